-- One row per campaign exposure (control or a named treatment arm) with its outcomes in the attribution
-- window [exposed_at, exposed_at + attribution_window_days). Only what is known at the decision
-- time counts; is_outcome_complete says whether the whole window lies before it.

{% set attribution_window_days = var('attribution_window_days') | int %}

with

exposures as (

    select * from {{ ref('stg_raw__campaign_exposures') }}

),

orders as (

    select * from {{ ref('stg_raw__orders') }}

),

engagement_events as (

    select * from {{ ref('stg_raw__engagement_events') }}

),

exposure_windows as (

    select
        exposure_id,
        campaign_id,
        customer_id,
        channel,
        arm,
        exposed_at,
        exposed_at + interval '{{ attribution_window_days }} days' as attribution_window_ends_at

    from exposures
    where exposed_at <= {{ decision_at() }}

),

known_orders as (

    select * from orders
    where ordered_at < {{ decision_at() }}

),

known_sessions as (

    select * from engagement_events
    where event_type = 'session'
        and occurred_at < {{ decision_at() }}

),

conversions as (

    select
        exposure_windows.exposure_id,
        count(*) as count_orders_in_window,
        sum(known_orders.amount) as revenue_in_window

    from exposure_windows
    inner join known_orders
        on exposure_windows.customer_id = known_orders.customer_id
        -- the half-open window [exposed_at, attribution_window_ends_at)
        and exposure_windows.exposed_at <= known_orders.ordered_at
        and exposure_windows.attribution_window_ends_at > known_orders.ordered_at
    group by exposure_windows.exposure_id

),

visits as (

    select
        exposure_windows.exposure_id,
        count(*) as count_sessions_in_window

    from exposure_windows
    inner join known_sessions
        on exposure_windows.customer_id = known_sessions.customer_id
        -- the half-open window [exposed_at, attribution_window_ends_at)
        and exposure_windows.exposed_at <= known_sessions.occurred_at
        and exposure_windows.attribution_window_ends_at > known_sessions.occurred_at
    group by exposure_windows.exposure_id

),

final as (

    select
        exposure_windows.exposure_id,
        exposure_windows.campaign_id,
        exposure_windows.customer_id,
        exposure_windows.channel,
        exposure_windows.arm,
        -- any named treatment arm counts as treated (a multi-arm test has several)
        exposure_windows.arm != 'control' as is_treated,
        exposure_windows.exposed_at,
        exposure_windows.attribution_window_ends_at,

        conversions.exposure_id is not null as has_converted,
        cast(coalesce(conversions.count_orders_in_window, 0) as bigint) as count_orders_in_window,
        cast(coalesce(conversions.revenue_in_window, 0) as {{ double_type() }}) as revenue_in_window,
        visits.exposure_id is not null as has_visited,

        exposure_windows.attribution_window_ends_at <= {{ decision_at() }} as is_outcome_complete

    from exposure_windows
    left join conversions
        on exposure_windows.exposure_id = conversions.exposure_id
    left join visits
        on exposure_windows.exposure_id = visits.exposure_id

)

-- sorted, so the exported file is byte-for-byte reproducible (the feature publisher digests it)
-- and its row-group statistics prune reads by key
select * from final
order by exposure_id
