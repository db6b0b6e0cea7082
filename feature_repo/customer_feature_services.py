"""Feature services, one per model version of the feature set it was trained on.

``uplift_model_v2`` adds the declared customer attributes (``customer_attributes``, whose fields
follow config/attributes.yaml) to v1's behaviour features; the pipeline trains and scores on v2.
v1 stays registered for the models trained on it.
"""

from customer_feature_views import (
    customer_attributes,
    customer_consent,
    customer_engagement,
    customer_rfm,
)
from feast import FeatureService

uplift_model_v1 = FeatureService(
    name="uplift_model_v1",
    features=[customer_rfm, customer_engagement, customer_consent],
    description="Features of the uplift targeting model (training and scoring use the same set).",
    tags={"owner": "data-science"},
)

uplift_model_v2 = FeatureService(
    name="uplift_model_v2",
    features=[
        customer_rfm,
        customer_engagement,
        customer_consent,
        *([customer_attributes] if customer_attributes is not None else []),
    ],
    description=(
        "v1's features and the declared customer attributes (config/attributes.yaml): what the "
        "uplift targeting model trains and scores on."
    ),
    tags={"owner": "data-science"},
)
