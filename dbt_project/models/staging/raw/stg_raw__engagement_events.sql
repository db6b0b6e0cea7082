with

source as (

    select * from {{ source('raw', 'engagement_events') }}

),

renamed as (

    select

        ----------  ids
        cast(event_id as bigint) as engagement_event_id,
        cast(customer_id as bigint) as customer_id,

        ---------- text
        cast(channel as {{ string_type() }}) as channel,
        cast(event_type as {{ string_type() }}) as event_type,

        ---------- timestamps
        cast(occurred_at as {{ timestamptz_type() }}) as occurred_at

    from source

)

select * from renamed
