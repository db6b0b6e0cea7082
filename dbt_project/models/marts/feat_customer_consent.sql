-- Consent features per customer and snapshot time: consent per channel as of the snapshot
-- (latest consent event strictly before it). Flags are 0/1 integers, the Int64 type the Feast
-- feature view `customer_consent` declares.

with

spine as (

    select * from {{ ref('int_feature_snapshots_spined') }}

),

consent_states as (

    select * from {{ ref('int_consent_states_pivoted') }}

),

flags as (

    select
        spine.customer_id,
        spine.snapshot_at,
        -- no consent event before the snapshot means no consent
        cast(cast(coalesce(consent_states.is_email_opted_in, false) as integer) as bigint)
            as is_email_opted_in,
        cast(cast(coalesce(consent_states.is_sms_opted_in, false) as integer) as bigint)
            as is_sms_opted_in,
        cast(cast(coalesce(consent_states.is_push_opted_in, false) as integer) as bigint)
            as is_push_opted_in

    from spine
    left join consent_states
        on spine.customer_id = consent_states.customer_id
        and spine.snapshot_at = consent_states.snapshot_at

),

final as (

    select
        customer_id,
        cast(snapshot_at as {{ timestamptz_type() }}) as event_timestamp,
        is_email_opted_in,
        is_sms_opted_in,
        is_push_opted_in,
        cast(is_email_opted_in + is_sms_opted_in + is_push_opted_in as bigint)
            as count_channels_opted_in

    from flags

)

-- sorted, so the exported file is byte-for-byte reproducible (the feature publisher digests it)
-- and its row-group statistics prune reads by key
select * from final
order by customer_id, event_timestamp
