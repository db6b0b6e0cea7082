-- Engagement features per customer and snapshot time, from the engagement events strictly
-- before the snapshot (point-in-time correct).

with

spine as (

    select * from {{ ref('int_feature_snapshots_spined') }}

),

snapshot_times as (

    select * from {{ ref('int_feature_snapshot_times_unioned') }}

),

engagement_events as (

    select * from {{ ref('stg_raw__engagement_events') }}

),

-- window starts computed once per snapshot time, not once per event (timestamptz interval
-- arithmetic is slow per row)
snapshot_windows as (

    select
        snapshot_at,
        snapshot_at - interval '30 days' as window_30d_starts_at,
        snapshot_at - interval '90 days' as window_90d_starts_at

    from snapshot_times

),

-- each event joins the few snapshot times after it (range join, no customer x time blow-up)
events_before_snapshots as (

    select
        engagement_events.customer_id,
        snapshot_windows.snapshot_at,
        engagement_events.event_type,
        engagement_events.occurred_at,
        engagement_events.occurred_at >= snapshot_windows.window_30d_starts_at as is_within_30d,
        engagement_events.occurred_at >= snapshot_windows.window_90d_starts_at as is_within_90d

    from engagement_events
    inner join snapshot_windows
        on engagement_events.occurred_at < snapshot_windows.snapshot_at

),

engagement_history as (

    select
        customer_id,
        snapshot_at,
        max(occurred_at) as last_engaged_at,
        count(case when is_within_30d and event_type = 'open' then 1 end) as count_opens_30d,
        count(case when is_within_30d and event_type = 'click' then 1 end) as count_clicks_30d,
        count(case when is_within_30d and event_type = 'dismiss' then 1 end)
            as count_dismisses_30d,
        count(case when is_within_30d and event_type = 'session' then 1 end)
            as count_sessions_30d,
        count(case when is_within_90d and event_type = 'open' then 1 end) as count_opens_90d,
        count(case when is_within_90d and event_type = 'click' then 1 end) as count_clicks_90d,
        count(case when is_within_90d and event_type = 'dismiss' then 1 end)
            as count_dismisses_90d

    from events_before_snapshots
    group by customer_id, snapshot_at

),

final as (

    select
        spine.customer_id,
        cast(spine.snapshot_at as {{ timestamptz_type() }}) as event_timestamp,

        cast(coalesce(engagement_history.count_opens_30d, 0) as bigint) as count_opens_30d,
        cast(coalesce(engagement_history.count_clicks_30d, 0) as bigint) as count_clicks_30d,
        cast(coalesce(engagement_history.count_dismisses_30d, 0) as bigint)
            as count_dismisses_30d,
        cast(coalesce(engagement_history.count_sessions_30d, 0) as bigint) as count_sessions_30d,
        cast(coalesce(engagement_history.count_opens_90d, 0) as bigint) as count_opens_90d,
        cast(coalesce(engagement_history.count_clicks_90d, 0) as bigint) as count_clicks_90d,
        cast(coalesce(engagement_history.count_dismisses_90d, 0) as bigint)
            as count_dismisses_90d,
        cast(
            engagement_history.count_clicks_90d as {{ double_type() }}
        ) / nullif(engagement_history.count_opens_90d, 0) as click_through_rate_90d,
        cast(
            {{ days_between('engagement_history.last_engaged_at', 'spine.snapshot_at') }}
            as {{ double_type() }}
        ) as days_since_last_engagement

    from spine
    left join engagement_history
        on spine.customer_id = engagement_history.customer_id
        and spine.snapshot_at = engagement_history.snapshot_at

)

-- sorted, so the exported file is byte-for-byte reproducible (the feature publisher digests it)
-- and its row-group statistics prune reads by key
select * from final
order by customer_id, event_timestamp
