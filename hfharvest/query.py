"""The query: what is asked of the Hub (the listing, its filters, the fields, how much of it),
and the URL of a walk's first page, the one place a request's parameters are built. Later pages'
URLs come from the Hub's `Link` header, as it wrote them."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from hfharvest.hub import RepoType, fields_of


@dataclass(frozen=True)
class Query:
    """What is asked of the Hub: the listing, its filters, the fields, and how much of it."""

    repo_type: RepoType
    sorts: tuple[str, ...]
    limit: int | None
    page_size: int
    search: tuple[str, ...]
    author: str | None
    filters: tuple[str, ...]
    pipeline_tag: str | None
    inference_providers: tuple[str, ...]
    full: bool
    expand: tuple[str, ...]  # when given, exactly the fields asked for (and `full` is False)
    hub_filters: tuple[tuple[str, str], ...]  # the other filters, in their wire form
    # CO2 emissions (MIN, MAX) a model's card must give: huggingface_hub's own filter, applied
    # to the answers (the Hub has no such parameter)
    emissions: tuple[float, float] | None

    @property
    def fields(self) -> tuple[str, ...]:
        """The fields asked for, besides `_id` and `id`, as `expand` names them."""
        return self.expand or fields_of(self.repo_type, full=self.full)

    @property
    def filtered(self) -> bool:
        return bool(
            self.search
            or self.emissions
            or self.author
            or self.filters
            or self.pipeline_tag
            or self.inference_providers
            or self.hub_filters
        )

    @property
    def page_size_sent(self) -> int:
        """The page size sent: a page larger than the limit would fetch entries thrown away."""
        return min(self.page_size, self.limit or self.page_size)

    def url(self, endpoint: str, sort: str) -> str:
        """The URL of a walk's first page: the one place a request's parameters are built."""
        return f"{endpoint}/api/{self.repo_type}s?{urlencode(self.params(sort))}"

    def params(self, sort: str) -> list[tuple[str, str]]:
        """The query of a walk's first page; later pages take theirs from the `Link` header."""
        params: list[tuple[str, str]] = []
        params.extend(("search", text) for text in self.search)
        if self.author:
            params.append(("author", self.author))
        params.extend(("filter", tag) for tag in self.filters)
        if self.pipeline_tag:
            params.append(("pipeline_tag", self.pipeline_tag))
        if self.inference_providers:
            params.append(("inference_provider", ",".join(self.inference_providers)))
        params.extend(self.hub_filters)
        params.append(("sort", sort))
        params.append(("limit", str(self.page_size_sent)))
        if self.full:
            params.append(("full", "true"))
        params.extend(("expand", name) for name in self.expand)
        return params
