-- One row per customer with an attribute row known at the decision time: every declared
-- attribute (sensitive ones too) as of the decision time, with its declared type. Read by the
-- bias audit (sensitive attributes are its segments) and by analysts.

with

attributes as (

    select * from {{ ref('stg_raw__customer_attributes') }}

),

known_attributes as (

    select * from attributes
    where valid_from <= {{ decision_at() }}

),

latest_per_customer as (

    select
        customer_id,
        max(valid_from) as valid_from

    from known_attributes
    group by customer_id

),

final as (

    select
        known_attributes.customer_id,
        known_attributes.valid_from{% for attribute in declared_attributes() %},
        known_attributes.{{ adapter.quote(attribute.name) }}{% endfor %}

    from known_attributes
    inner join latest_per_customer
        on known_attributes.customer_id = latest_per_customer.customer_id
        and known_attributes.valid_from = latest_per_customer.valid_from

)

select * from final
order by customer_id
