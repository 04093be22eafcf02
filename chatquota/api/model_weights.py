"""Model weights: what an input and an output token of each model count as."""

from ..auth import READERS, current_user, require
from ..extensions import db
from ..schemas.weights import ModelWeightRequestSchema, ModelWeightSchema
from ..services import weights
from . import Blueprint

blp = Blueprint("model_weights", __name__, url_prefix="/api/chat-quota/model-weights",
                description="Model weights: tokens charged per input and output token.")


@blp.route("/", methods=["GET"])
@require(*READERS)
@blp.response(200, ModelWeightSchema(many=True))
@blp.paginate()
def list_weights(pagination_parameters):
    """List the models that have weights, by name; any other model weighs 1."""
    page = weights.list_weights(db.session, pagination_parameters.first_item,
                                pagination_parameters.page_size)
    pagination_parameters.item_count = page.total
    return page.items


@blp.route("/", methods=["POST"])
@require("is_staff")
@blp.arguments(ModelWeightRequestSchema)
@blp.response(201, ModelWeightSchema)
@blp.alt_response(200, schema=ModelWeightSchema, description="The model had weights: replaced.")
@blp.doc(description=(
    "Set a model's input and output weights (exact decimals, e.g. `0.25` or `\"4\"`). "
    "An event is charged `ceil(input_tokens * input_weight + output_tokens * output_weight)`; "
    "an event reported with only `tokens` is charged `ceil(tokens * max(input_weight, "
    "output_weight))`; a model without weights weighs 1. Weights apply to events recorded "
    "after the change, never to earlier ones; each change is audited."))
def set_weights(args):
    """Set a model's weights for the events recorded from now on."""
    record, created = weights.set_weights(db.session, current_user(), args["model"],
                                          args["input_weight"], args["output_weight"])
    return record, 201 if created else 200
