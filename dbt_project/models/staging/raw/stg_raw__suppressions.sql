with

source as (

    select * from {{ source('raw', 'suppressions') }}

),

renamed as (

    select

        ----------  ids
        cast(suppression_id as bigint) as suppression_id,
        cast(customer_id as bigint) as customer_id,

        ---------- text
        -- null: suppressed on every channel
        cast(channel as {{ string_type() }}) as channel,
        cast(reason as {{ string_type() }}) as suppression_reason,

        ---------- timestamps
        cast(suppressed_at as {{ timestamptz_type() }}) as suppressed_at

    from source

)

select * from renamed
