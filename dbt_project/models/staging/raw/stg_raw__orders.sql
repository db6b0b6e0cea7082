with

source as (

    select * from {{ source('raw', 'orders') }}

),

renamed as (

    select

        ----------  ids
        cast(order_id as bigint) as order_id,
        cast(customer_id as bigint) as customer_id,

        ---------- numerics
        cast(amount as {{ double_type() }}) as amount,

        ---------- text
        cast(category as {{ string_type() }}) as category,
        cast(sales_channel as {{ string_type() }}) as sales_channel,

        ---------- timestamps
        cast(ordered_at as {{ timestamptz_type() }}) as ordered_at

    from source

)

select * from renamed
