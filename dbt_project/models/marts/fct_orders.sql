with

orders as (

    select * from {{ ref('stg_raw__orders') }}

),

final as (

    select
        order_id,
        customer_id,
        amount,
        ordered_at

    from orders
    where ordered_at <= {{ decision_at() }}

)

-- sorted, so the exported file is byte-for-byte reproducible (the feature publisher digests it)
-- and its row-group statistics prune reads by key
select * from final
order by order_id
