{#-
    The combination of the given columns is unique across the model (a composite primary key).
    Like dbt_utils.unique_combination_of_columns, without the package:

        data_tests:
          - unique_combination_of_columns:
              arguments:
                combination_of_columns: [customer_id, event_timestamp]
-#}

{% test unique_combination_of_columns(model, combination_of_columns) %}

with

duplicated_keys as (

    select
        {{ combination_of_columns | join(',\n        ') }},
        count(*) as count_rows

    from {{ model }}
    group by {{ combination_of_columns | join(', ') }}
    having count(*) > 1

)

select * from duplicated_keys

{% endtest %}
