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
        cast(amount as double precision) as amount,

        ---------- text
        cast(category as varchar) as category,
        cast(sales_channel as varchar) as sales_channel,

        ---------- timestamps
        cast(ordered_at as timestamptz) as ordered_at

    from source

)

select * from renamed
