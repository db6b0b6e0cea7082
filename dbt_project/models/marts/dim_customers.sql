-- One row per customer known at the decision time, with current consent per channel (latest
-- consent event at or before the decision time) and current suppressions.

with

customers as (

    select * from {{ ref('stg_raw__customers') }}

),

consent_events as (

    select * from {{ ref('stg_raw__consent_events') }}

),

suppressions as (

    select * from {{ ref('stg_raw__suppressions') }}

),

known_consent_events as (

    select * from consent_events
    where consented_at <= {{ decision_at() }}

),

latest_consent_per_channel as (

    select
        customer_id,
        channel,
        {{ arg_max('is_opted_in', 'consented_at, consent_event_id') }} as is_opted_in,
        max(consented_at) as consented_at

    from known_consent_events
    group by customer_id, channel

),

consent_pivoted as (

    select
        customer_id,
        bool_or(channel = 'email' and is_opted_in) as is_email_opted_in,
        bool_or(channel = 'sms' and is_opted_in) as is_sms_opted_in,
        bool_or(channel = 'push' and is_opted_in) as is_push_opted_in,
        max(consented_at) as consent_updated_at

    from latest_consent_per_channel
    group by customer_id

),

suppressions_pivoted as (

    select
        customer_id,
        bool_or(channel is null) as is_suppressed_all_channels,
        bool_or(channel is null or channel = 'email') as is_email_suppressed,
        bool_or(channel is null or channel = 'sms') as is_sms_suppressed,
        bool_or(channel is null or channel = 'push') as is_push_suppressed

    from suppressions
    where suppressed_at <= {{ decision_at() }}
    group by customer_id

),

final as (

    select
        customers.customer_id,
        customers.signed_up_at,
        customers.region,
        customers.time_zone,
        consent_pivoted.consent_updated_at,

        -- no consent event on a channel means no consent
        coalesce(consent_pivoted.is_email_opted_in, false) as is_email_opted_in,
        coalesce(consent_pivoted.is_sms_opted_in, false) as is_sms_opted_in,
        coalesce(consent_pivoted.is_push_opted_in, false) as is_push_opted_in,

        coalesce(suppressions_pivoted.is_suppressed_all_channels, false)
            as is_suppressed_all_channels,
        coalesce(suppressions_pivoted.is_email_suppressed, false) as is_email_suppressed,
        coalesce(suppressions_pivoted.is_sms_suppressed, false) as is_sms_suppressed,
        coalesce(suppressions_pivoted.is_push_suppressed, false) as is_push_suppressed

    from customers
    left join consent_pivoted
        on customers.customer_id = consent_pivoted.customer_id
    left join suppressions_pivoted
        on customers.customer_id = suppressions_pivoted.customer_id
    where customers.signed_up_at <= {{ decision_at() }}

)

-- sorted, so the exported file is byte-for-byte reproducible (the feature publisher digests it)
-- and its row-group statistics prune reads by key
select * from final
order by customer_id
