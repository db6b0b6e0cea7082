-- The times feature snapshots are taken at: midnight UTC of every day with a past campaign
-- exposure (so a point-in-time join at an exposure finds that morning's snapshot) and of the
-- decision day (the features the next sends are scored on).

with

exposures as (

    select * from {{ ref('stg_raw__campaign_exposures') }}

),

exposure_days as (

    select distinct
        {{ utc_day('exposed_at') }} as snapshot_at

    from exposures
    where exposed_at <= {{ decision_at() }}

),

decision_day as (

    select
        {{ decision_day() }} as snapshot_at

),

unioned as (

    select snapshot_at from exposure_days
    union
    select snapshot_at from decision_day

),

final as (

    select
        cast(snapshot_at as {{ timestamptz_type() }}) as snapshot_at,
        snapshot_at = {{ decision_day() }} as is_decision_day

    from unioned

)

select * from final
