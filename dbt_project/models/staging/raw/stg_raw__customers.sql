with

source as (

    select * from {{ source('raw', 'customers') }}

),

renamed as (

    select

        ----------  ids
        cast(customer_id as bigint) as customer_id,

        ---------- text
        cast(region as {{ string_type() }}) as region,
        cast(time_zone as {{ string_type() }}) as time_zone,

        ---------- timestamps
        cast(signed_up_at as {{ timestamptz_type() }}) as signed_up_at,
        cast(updated_at as {{ timestamptz_type() }}) as updated_at

    from source

)

select * from renamed
