{#-
    Every non-null value is an arm name: `control` or a named treatment in lower-case letters,
    digits and underscores (the raw contract's ARM_NAME_PATTERN). A multi-arm test has several
    treatments, so the set is open; a typo such as 'Treatment ' still fails here.
    The pattern is anchored, so the match is a full one on every adapter (matches_regex).
-#}

{% test is_arm_name(model, column_name) %}

with

distinct_values as (

    select distinct {{ column_name }} as value
    from {{ model }}
    where {{ column_name }} is not null

)

select value
from distinct_values
where not {{ matches_regex('value', '^[a-z][a-z0-9_]{0,62}$') }}

{% endtest %}
