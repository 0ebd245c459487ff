-- One row per entry of a batch's `errors.data`, in the API's order.
with

source as (

    select * from openai_batches.batches__errors__data

),

renamed as (

    select
        -- ids
        account,
        batch_id,
        position as error_position,

        -- properties
        code,
        message,
        param,
        line

    from source

)

select * from renamed
