with

source as (

    select * from {{ source('raw', 'campaign_exposures') }}

),

renamed as (

    select

        ----------  ids
        cast(exposure_id as bigint) as exposure_id,
        cast(campaign_id as varchar) as campaign_id,
        cast(customer_id as bigint) as customer_id,

        ---------- text
        cast(channel as varchar) as channel,
        cast(arm as varchar) as arm,

        ---------- timestamps
        cast(exposed_at as timestamptz) as exposed_at

    from source

)

select * from renamed
