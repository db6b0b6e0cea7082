-- A team's own customer attributes, one column per declared attribute (the var
-- customer_attributes, from config/attributes.yaml), cast to the declared type. A row's values
-- hold from valid_from until the customer's next row.

with

source as (

    select * from {{ source('raw', 'customer_attributes') }}

),

renamed as (

    select

        ----------  ids
        cast(customer_id as bigint) as customer_id,

        ---------- timestamps, then the declared attributes
        cast(valid_from as timestamptz) as valid_from{% for attribute in declared_attributes() %},
        {{ cast_attribute(attribute) }} as {{ adapter.quote(attribute.name) }}{% endfor %}

    from source

)

select * from renamed
