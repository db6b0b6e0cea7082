with

source as (

    select * from {{ source('raw', 'campaign_exposures') }}

),

renamed as (

    select

        ----------  ids
        cast(exposure_id as bigint) as exposure_id,
        cast(campaign_id as {{ string_type() }}) as campaign_id,
        cast(customer_id as bigint) as customer_id,

        ---------- text
        cast(channel as {{ string_type() }}) as channel,
        cast(arm as {{ string_type() }}) as arm,

        ---------- timestamps
        cast(exposed_at as {{ timestamptz_type() }}) as exposed_at

    from source

)

select * from renamed
