"""Waldur-style pagination on top of flask-smorest's `@blp.paginate()`.

`?page=&page_size=` (default 1 and 10, page_size at most 200); the body is a
plain JSON array; `X-Result-Count` carries the total and `Link` the absolute
URLs of the first, prev, next and last pages, other query parameters kept.
A page or page_size that is not an integer in range is a 400 naming the
parameter; a page past the last one is a 404 `{"detail": "Invalid page."}`,
as in Django REST Framework (page 1 of an empty list is an empty array).
"""

from urllib.parse import urlencode

from flask import request
from flask_smorest import abort

MAX_PAGE_SIZE = 200

RESULT_COUNT_HEADER = "X-Result-Count"


def page_url(page: int) -> str:
    """Return this request's absolute URL with `page` replaced."""
    args = request.args.to_dict(flat=False)
    args["page"] = [str(page)]
    return f"{request.base_url}?{urlencode(args, doseq=True)}"


def link_header(page: int, last_page: int) -> str:
    """Return the `Link` header value for `page` of `last_page` pages."""
    links = [(1, "first")]
    if page > 1:
        links.append((page - 1, "prev"))
    if page < last_page:
        links.append((page + 1, "next"))
    links.append((last_page, "last"))
    return ", ".join(f'<{page_url(number)}>; rel="{rel}"' for number, rel in links)


class WaldurPaginationMixin:
    """Blueprint mixin: Waldur's headers instead of smorest's `X-Pagination`."""

    PAGINATION_HEADER_NAME = RESULT_COUNT_HEADER
    DEFAULT_PAGINATION_PARAMETERS = {"page": 1, "page_size": 10, "max_page_size": MAX_PAGE_SIZE}

    def _set_pagination_metadata(self, page_params, result, headers):
        """Refuse a page past the end, else add `X-Result-Count` and `Link`."""
        count = page_params.item_count
        last_page = max(1, -(-count // page_params.page_size))
        if page_params.page > last_page:
            abort(404, message="Invalid page.")
        headers = dict(headers or {})
        headers[RESULT_COUNT_HEADER] = str(count)
        headers["Link"] = link_header(page_params.page, last_page)
        return result, headers

    def _document_pagination_metadata(self, spec, resp_doc):
        """Document the two pagination headers of a list response."""
        resp_doc.setdefault("headers", {}).update({
            RESULT_COUNT_HEADER: {
                "description": "Total number of items in all pages.",
                "schema": {"type": "integer"},
            },
            "Link": {
                "description": 'URLs of the first, prev, next and last pages (rel="...").',
                "schema": {"type": "string"},
            },
        })
