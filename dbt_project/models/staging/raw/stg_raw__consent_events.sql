with

source as (

    select * from {{ source('raw', 'consent_events') }}

),

renamed as (

    select

        ----------  ids
        cast(consent_event_id as bigint) as consent_event_id,
        cast(customer_id as bigint) as customer_id,

        ---------- text
        cast(channel as {{ string_type() }}) as channel,
        cast(source as {{ string_type() }}) as consent_source,

        ---------- booleans
        cast(is_opted_in as boolean) as is_opted_in,

        ---------- timestamps
        cast(consented_at as {{ timestamptz_type() }}) as consented_at

    from source

)

select * from renamed
