"""Feature services, one per model version of the feature set it was trained on."""

from customer_feature_views import customer_consent, customer_engagement, customer_rfm
from feast import FeatureService

uplift_model_v1 = FeatureService(
    name="uplift_model_v1",
    features=[customer_rfm, customer_engagement, customer_consent],
    description="Features of the uplift targeting model (training and scoring use the same set).",
    tags={"owner": "data-science"},
)
