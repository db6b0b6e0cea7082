-- A team's own customer attributes, one column per declared attribute (the var
-- customer_attributes, from config/attributes.yaml), cast to the declared type. A row's values
-- hold from valid_from until the customer's next row.

{%- set attributes = declared_attributes() %}

with

source as (

    select * from {{ source('raw', 'customer_attributes') }}

),

renamed as (

    select

        ----------  ids
        cast(customer_id as bigint) as customer_id,

        ---------- timestamps, then the declared attributes
        cast(valid_from as {{ timestamptz_type() }}) as valid_from{% for a in attributes %},
        {{ cast_attribute(a) }} as {{ adapter.quote(a.name) }}{% endfor %}

    from source

)

select * from renamed
