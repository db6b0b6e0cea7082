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
        cast(channel as varchar) as channel,
        cast(reason as varchar) as suppression_reason,

        ---------- timestamps
        cast(suppressed_at as timestamptz) as suppressed_at

    from source

)

select * from renamed
