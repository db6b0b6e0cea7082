-- The feature spine: one row per customer and snapshot time, for every customer who signed up
-- before that snapshot.

with

customers as (

    select * from {{ ref('stg_raw__customers') }}

),

snapshot_times as (

    select * from {{ ref('int_feature_snapshot_times_unioned') }}

),

spined as (

    select
        customers.customer_id,
        snapshot_times.snapshot_at,
        snapshot_times.is_decision_day,
        customers.signed_up_at

    from customers
    inner join snapshot_times
        on customers.signed_up_at < snapshot_times.snapshot_at

)

select * from spined
