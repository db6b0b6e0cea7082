{#-
    Every non-null value of a timestamptz column is a midnight UTC (feature snapshot times are).
    Distinct values first: a feature table has millions of rows but a handful of snapshot times.
-#}

{% test is_utc_midnight(model, column_name) %}

with

distinct_values as (

    select distinct {{ column_name }} as value
    from {{ model }}
    where {{ column_name }} is not null

)

select value
from distinct_values
where value <> {{ utc_day('value') }}

{% endtest %}
