"""Marshmallow schemas: request validation, response shapes, and the OpenAPI document.

Shapes and ranges only; anything that needs the database is a service's job.
Error messages follow Django REST Framework's, which Waldur clients show.
One module per area: `fields` (the field types every area uses), `quota`
(the two Waldur endpoints), `metering`, `administration`, `groups`,
`weights`, `alerts`, `common`.
"""
