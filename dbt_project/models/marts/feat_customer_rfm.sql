-- Recency, frequency and monetary features per customer and snapshot time, from the orders
-- strictly before the snapshot (point-in-time correct).

with

spine as (

    select * from {{ ref('int_feature_snapshots_spined') }}

),

snapshot_times as (

    select * from {{ ref('int_feature_snapshot_times_unioned') }}

),

orders as (

    select * from {{ ref('stg_raw__orders') }}

),

-- window starts computed once per snapshot time, not once per order (timestamptz interval
-- arithmetic is slow per row)
snapshot_windows as (

    select
        snapshot_at,
        snapshot_at - interval '30 days' as window_30d_starts_at,
        snapshot_at - interval '90 days' as window_90d_starts_at,
        snapshot_at - interval '365 days' as window_365d_starts_at

    from snapshot_times

),

-- each order joins the few snapshot times after it (range join, no customer x time blow-up)
orders_before_snapshots as (

    select
        orders.customer_id,
        snapshot_windows.snapshot_at,
        orders.ordered_at,
        orders.amount,
        orders.category,
        orders.sales_channel,
        orders.ordered_at >= snapshot_windows.window_30d_starts_at as is_within_30d,
        orders.ordered_at >= snapshot_windows.window_90d_starts_at as is_within_90d,
        orders.ordered_at >= snapshot_windows.window_365d_starts_at as is_within_365d

    from orders
    inner join snapshot_windows
        on orders.ordered_at < snapshot_windows.snapshot_at

),

order_history as (

    select
        customer_id,
        snapshot_at,
        max(ordered_at) as last_ordered_at,
        count(case when is_within_30d then 1 end) as count_orders_30d,
        count(case when is_within_90d then 1 end) as count_orders_90d,
        count(case when is_within_365d then 1 end) as count_orders_365d,
        count(case when is_within_365d and category = 'mens' then 1 end)
            as count_orders_mens_365d,
        count(case when is_within_365d and category = 'womens' then 1 end)
            as count_orders_womens_365d,
        count(case when is_within_365d and sales_channel = 'web' then 1 end)
            as count_orders_web_365d,
        count(case when is_within_365d and sales_channel = 'phone' then 1 end)
            as count_orders_phone_365d,
        sum(case when is_within_90d then amount end) as sum_amount_90d,
        sum(case when is_within_365d then amount end) as sum_amount_365d

    from orders_before_snapshots
    group by customer_id, snapshot_at

),

final as (

    select
        spine.customer_id,
        cast(spine.snapshot_at as {{ timestamptz_type() }}) as event_timestamp,

        cast({{ days_between('order_history.last_ordered_at', 'spine.snapshot_at') }} as {{ double_type() }})
            as days_since_last_order,
        cast(coalesce(order_history.count_orders_30d, 0) as bigint) as count_orders_30d,
        cast(coalesce(order_history.count_orders_90d, 0) as bigint) as count_orders_90d,
        cast(coalesce(order_history.count_orders_365d, 0) as bigint) as count_orders_365d,
        cast(coalesce(order_history.count_orders_mens_365d, 0) as bigint)
            as count_orders_mens_365d,
        cast(coalesce(order_history.count_orders_womens_365d, 0) as bigint)
            as count_orders_womens_365d,
        cast(coalesce(order_history.count_orders_web_365d, 0) as bigint)
            as count_orders_web_365d,
        cast(coalesce(order_history.count_orders_phone_365d, 0) as bigint)
            as count_orders_phone_365d,
        cast(coalesce(order_history.sum_amount_90d, 0) as {{ double_type() }}) as sum_amount_90d,
        cast(coalesce(order_history.sum_amount_365d, 0) as {{ double_type() }}) as sum_amount_365d,
        cast(order_history.sum_amount_365d as {{ double_type() }})
        / nullif(order_history.count_orders_365d, 0) as avg_order_amount_365d,
        cast(floor({{ days_between('spine.signed_up_at', 'spine.snapshot_at') }}) as bigint)
            as tenure_days

    from spine
    left join order_history
        on spine.customer_id = order_history.customer_id
        and spine.snapshot_at = order_history.snapshot_at

)

-- sorted, so the exported file is byte-for-byte reproducible (the feature publisher digests it)
-- and its row-group statistics prune reads by key
select * from final
order by customer_id, event_timestamp
