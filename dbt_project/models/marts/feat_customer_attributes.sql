-- Declared customer attributes per customer and snapshot time, point in time: the attribute row
-- in force strictly before the snapshot (the latest valid_from before it), encoded as the
-- feature columns of the declaration (numbers, 0/1 booleans, one-hot categoricals). Customers
-- without a row before the snapshot have nulls. Sensitive attributes have no feature columns.

{%- set encoded = declared_attributes() | selectattr('columns') | list %}

with

spine as (

    select * from {{ ref('int_feature_snapshots_spined') }}

),

snapshot_times as (

    select * from {{ ref('int_feature_snapshot_times_unioned') }}

),

attributes as (

    select * from {{ ref('stg_raw__customer_attributes') }}

),

-- each row holds from valid_from until the customer's next row supersedes it
attributes_sequenced as (

    select
        attributes.*,
        coalesce(
            lead(attributes.valid_from) over (
                partition by attributes.customer_id
                order by attributes.valid_from
            ),
            {{ timestamp_infinity() }}
        ) as superseded_at

    from attributes

),

-- the row in force at a snapshot: valid strictly before it and not superseded before it
attributes_at_snapshots as (

    select
        attributes_sequenced.*,
        snapshot_times.snapshot_at

    from attributes_sequenced
    inner join snapshot_times
        on attributes_sequenced.valid_from < snapshot_times.snapshot_at
        and attributes_sequenced.superseded_at >= snapshot_times.snapshot_at

),

final as (

    select
        spine.customer_id,
        cast(spine.snapshot_at as {{ timestamptz_type() }}) as event_timestamp{% for attribute in encoded %},
        {{ attribute_feature_columns(attribute, 'attributes_at_snapshots') }}{% endfor %}

    from spine
    -- unreferenced when no attribute is declared (the columns above follow the declaration)
    left join attributes_at_snapshots  -- noqa: ST11
        on spine.customer_id = attributes_at_snapshots.customer_id
        and spine.snapshot_at = attributes_at_snapshots.snapshot_at

)

-- sorted, so the exported file is byte-for-byte reproducible (the feature publisher digests it)
select * from final
order by customer_id, event_timestamp
