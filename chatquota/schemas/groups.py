"""Marshmallow schemas of groups: the groups, their members, their quota and defaults."""

from marshmallow import Schema, fields, pre_load, validate

from .fields import StrictSchema, Uuid, limit_field

GROUP_NAME = validate.Length(min=1, max=150)


def _group_limit(period: str) -> fields.Integer:
    return fields.Integer(allow_none=True, metadata={
        "description": f"{period.capitalize()} token limit of the group. Null uses the group "
                       "default. -1 means unlimited."})


class GroupSchema(Schema):
    uuid = Uuid()
    name = fields.String()
    daily_limit = _group_limit("daily")
    weekly_limit = _group_limit("weekly")
    monthly_limit = _group_limit("monthly")
    member_count = fields.Integer()
    created_at = fields.DateTime()


class _NameSchema(StrictSchema):
    name = fields.String(required=True, validate=GROUP_NAME, metadata={
        "description": "Unique; leading and trailing spaces are removed."})

    @pre_load
    def _strip_name(self, data, **kwargs):
        name = data.get("name") if isinstance(data, dict) else None
        return {**data, "name": name.strip()} if isinstance(name, str) else data


class GroupCreateSchema(_NameSchema):
    """A new group; limits left out are null (the group defaults)."""

    daily_limit = limit_field("Daily token limit. null = group default, -1 = unlimited.")
    weekly_limit = limit_field("Weekly token limit. null = group default, -1 = unlimited.")
    monthly_limit = limit_field("Monthly token limit. null = group default, -1 = unlimited.")


class GroupUpdateSchema(_NameSchema):
    """Rename a group (its limits change with set_group_quota)."""


class GroupListQuerySchema(Schema):
    search = fields.String(validate=validate.Length(max=150),
                           metadata={"description": "Part of the group's name, any case."})


class MemberSchema(Schema):
    user_uuid = Uuid()
    username = fields.String()
    is_active = fields.Boolean()
    joined_at = fields.DateTime(metadata={"description": "When the user became a member."})


class MemberCreateSchema(StrictSchema):
    user_uuid = Uuid(required=True, metadata={"description": "The user to add."})


class GroupQuerySchema(Schema):
    group_uuid = Uuid(required=True, metadata={"description": "The group (staff, support and "
                                                              "service: any; others: their own)."})


class SetGroupQuotaRequestSchema(StrictSchema):
    """Set some of a group's limits; an omitted field keeps its value."""

    group_uuid = Uuid(required=True, metadata={"description": "UUID of the group."})
    daily_limit = limit_field("Daily token limit. null = group default, -1 = unlimited; "
                              "omit to keep.")
    weekly_limit = limit_field("Weekly token limit. null = group default, -1 = unlimited; "
                               "omit to keep.")
    monthly_limit = limit_field("Monthly token limit. null = group default, -1 = unlimited; "
                                "omit to keep.")
