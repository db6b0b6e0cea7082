{#-
    The combination of the given columns is unique across the model (a composite primary key).
    Like dbt_utils.unique_combination_of_columns, without the package (the SQL, per adapter, is in
    macros/data_tests.sql):

        data_tests:
          - unique_combination_of_columns:
              arguments:
                combination_of_columns: [customer_id, event_timestamp]
-#}

{% test unique_combination_of_columns(model, combination_of_columns) %}
    {{ adapter.dispatch('test_unique_combination_of_columns')(model, combination_of_columns) }}
{% endtest %}
