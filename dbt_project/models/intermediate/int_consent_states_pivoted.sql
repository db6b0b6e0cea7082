-- Consent per channel as of each snapshot time: the latest consent event strictly before the
-- snapshot (ties on the timestamp broken by the later event id), one column per channel.
-- Only (customer, snapshot) pairs with at least one earlier consent event have a row.

with

consent_events as (

    select * from {{ ref('stg_raw__consent_events') }}

),

snapshot_times as (

    select * from {{ ref('int_feature_snapshot_times_unioned') }}

),

-- each consent event is the state of its (customer, channel) from consented_at until the next
-- event on that channel supersedes it
consent_events_sequenced as (

    select
        customer_id,
        channel,
        is_opted_in,
        consented_at,
        coalesce(
            lead(consented_at) over (
                partition by customer_id, channel
                order by consented_at, consent_event_id
            ),
            {{ timestamp_infinity() }}
        ) as superseded_at

    from consent_events

),

-- the state in force at a snapshot: known strictly before it and not superseded before it;
-- one row per (customer, channel, snapshot), without aggregating all earlier events
consent_states_at_snapshots as (

    select
        consent_events_sequenced.customer_id,
        snapshot_times.snapshot_at,
        consent_events_sequenced.channel,
        consent_events_sequenced.is_opted_in,
        consent_events_sequenced.consented_at

    from consent_events_sequenced
    inner join snapshot_times
        on consent_events_sequenced.consented_at < snapshot_times.snapshot_at
        and consent_events_sequenced.superseded_at >= snapshot_times.snapshot_at

),

pivoted as (

    select
        customer_id,
        snapshot_at,
        bool_or(channel = 'email' and is_opted_in) as is_email_opted_in,
        bool_or(channel = 'sms' and is_opted_in) as is_sms_opted_in,
        bool_or(channel = 'push' and is_opted_in) as is_push_opted_in,
        max(consented_at) as consent_updated_at

    from consent_states_at_snapshots
    group by customer_id, snapshot_at

)

select * from pivoted
