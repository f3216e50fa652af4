"""The eligibility and pricing policy: a TOML file read into validated pydantic models.

A default ships with the package (`policy_default.toml`); `--policy FILE` or the config file's
`policy` replace it as a whole. Amounts are read as Decimal straight from the TOML text (never
through float), and every error names the file and the key, so a typo fails loudly at load time
instead of turning into a wrong quote later.
"""

from __future__ import annotations

import fnmatch
import re
import tomllib
from datetime import date
from decimal import Decimal
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from controller.errors import ControllerError
from controller.holiday_data import supported_countries
from inventory.catalog import PRODUCT_GROUP_TITLES, ProductGroup, product_group_for_model
from inventory.input_files import parse_toml, read_small_text
from inventory.models import ContractKind, Device, Pricing

DEFAULT_POLICY_RESOURCE = "policy_default.toml"
DEFAULT_SOURCE = "<built-in default policy>"
_CENT = Decimal("0.01")
_REGEX_PREFIX = "re:"
_VENDOR_PREFIX = re.compile(r"^\s*(poly|polycom)\s+", re.IGNORECASE)


class PolicyError(ControllerError):
    """The policy file cannot be read or holds an invalid value (the message names file and key)."""


# -- value types ---------------------------------------------------------------------------------


def _check_pattern(value: str) -> str:
    """A model/feature pattern: a case-insensitive glob, or `re:REGEX` (case-insensitive search)."""
    if not value.strip():
        raise ValueError("a pattern must not be empty")
    if value.startswith(_REGEX_PREFIX):
        try:
            re.compile(value[len(_REGEX_PREFIX) :])
        except re.error as exc:
            raise ValueError(f"invalid regular expression {value!r}: {exc}") from None
    return value


@lru_cache(maxsize=512)
def _compiled(pattern: str) -> re.Pattern[str]:
    if pattern.startswith(_REGEX_PREFIX):
        return re.compile(pattern[len(_REGEX_PREFIX) :], re.IGNORECASE)
    return re.compile(fnmatch.translate(pattern.casefold()))


def pattern_matches(pattern: str, text: str) -> bool:
    """Whether `text` (a model or feature name) matches a policy pattern.

    Globs match the whole name, ignoring case; `re:` patterns are searched anywhere. A leading
    vendor word ("Poly VVX 450", "Polycom HDX 8000") is tolerated, as devices report it.
    """
    compiled = _compiled(pattern)
    candidates = {text.strip(), _VENDOR_PREFIX.sub("", text).strip()}
    if pattern.startswith(_REGEX_PREFIX):
        return any(compiled.search(candidate) for candidate in candidates)
    return any(compiled.match(candidate.casefold()) for candidate in candidates)


def _check_country(value: str) -> str:
    """An ISO 3166 country the holidays library knows, optionally with a subdivision (`DE-BY`)."""
    code = value.strip().upper()
    country, _, subdivision = code.partition("-")
    supported = supported_countries()
    if country not in supported:
        raise ValueError(f"{value!r} is not a country the holidays library knows (ISO 3166 code)")
    if subdivision and subdivision not in supported[country]:
        known = ", ".join(supported[country]) or "none"
        raise ValueError(
            f"{value!r}: {country} has no subdivision {subdivision!r} (known: {known})"
        )
    return code


def _to_cents(value: Decimal) -> Decimal:
    return value.quantize(_CENT)


Money = Annotated[Decimal, Field(ge=0, decimal_places=2), AfterValidator(_to_cents)]
Pattern = Annotated[str, AfterValidator(_check_pattern)]
Country = Annotated[str, AfterValidator(_check_country)]


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


# -- sections ------------------------------------------------------------------------------------


class ProductGroupRule(_Section):
    """Which device models belong to a product group (first matching group wins)."""

    id: ProductGroup
    title: str | None = None
    models: list[Pattern] = Field(default_factory=list)

    @property
    def display(self) -> str:
        return self.title or PRODUCT_GROUP_TITLES[self.id]


class PpiFee(_Section):
    """One row of the pay-per-incident fee table: in force from `effective` until superseded."""

    product_group: ProductGroup
    effective: date
    amount: Money


class ReactivationFee(_Section):
    """The extended reactivation fee for one pricing basis, optionally for one product group."""

    pricing: Pricing
    effective: date
    amount: Money
    product_group: ProductGroup | None = None


class Exclusion(_Section):
    """A model or feature pattern that is not eligible, with the reason quotes show."""

    pattern: Pattern
    reason: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        return {"pattern": value} if isinstance(value, str) else value


class SiteInfo(_Section):
    """Country (holiday calendar) and region (for exclusions and regional contracts) of a site."""

    country: Country | None = None
    region: str | None = None


class SlaPolicy(_Section):
    """The activation window of the seed ("1-2 business days"), in business days."""

    business_days: int = Field(default=2, ge=0, le=60)
    default_country: Country = "US"


class EligibilityPolicy(_Section):
    """The seed's reactivation eligibility rules, as switches and lists."""

    certified_voip_partner: bool = True
    voip_partner_groups: list[ProductGroup] = Field(
        default_factory=lambda: [ProductGroup.SOUNDSTATION_IP, ProductGroup.SOUNDPOINT_IP]
    )
    covering_kinds: list[ContractKind] = Field(
        default_factory=lambda: [ContractKind.EXTENDED_REACTIVATION]
    )
    excluded_models: list[Exclusion] = Field(default_factory=list)
    excluded_features: list[Exclusion] = Field(default_factory=list)
    excluded_regions: list[str] = Field(default_factory=list)
    excluded_countries: list[Country] = Field(default_factory=list)

    @field_validator("covering_kinds")
    @classmethod
    def _some_kind(cls, value: list[ContractKind]) -> list[ContractKind]:
        if not value:
            raise ValueError("at least one contract kind must cover re-activation")
        return value


class LicensingPolicy(_Section):
    """Models declared to have no licensed features: health calls them OK when their license
    state cannot be read (there is nothing to read), and says so in the reason."""

    no_licensed_features: list[Exclusion] = Field(default_factory=list)


class Policy(_Section):
    """A whole policy file. `source` says where it came from (for messages and quotes)."""

    version: Literal[1] = 1
    name: str = "polyfleet policy"
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    notes: list[str] = Field(default_factory=list)
    sla: SlaPolicy = SlaPolicy()
    sites: dict[str, SiteInfo] = Field(default_factory=dict)
    eligibility: EligibilityPolicy = EligibilityPolicy()
    licensing: LicensingPolicy = LicensingPolicy()
    product_groups: list[ProductGroupRule] = Field(default_factory=list)
    ppi_fees: list[PpiFee] = Field(default_factory=list)
    reactivation_fees: list[ReactivationFee] = Field(default_factory=list)

    _source: str = PrivateAttr(default="<policy>")

    @model_validator(mode="after")
    def _no_duplicates(self) -> Policy:
        seen_groups: set[ProductGroup] = set()
        for index, rule in enumerate(self.product_groups, 1):
            if rule.id in seen_groups:
                raise ValueError(f"product_groups[#{index}]: product group {rule.id} given twice")
            seen_groups.add(rule.id)
        ppi: set[tuple[ProductGroup, date]] = set()
        for index, fee in enumerate(self.ppi_fees, 1):
            key = (fee.product_group, fee.effective)
            if key in ppi:
                raise ValueError(
                    f"ppi_fees[#{index}]: a second {fee.product_group} fee "
                    f"effective {fee.effective}"
                )
            ppi.add(key)
        reactivation: set[tuple[Pricing, ProductGroup | None, date]] = set()
        for index, rfee in enumerate(self.reactivation_fees, 1):
            rkey = (rfee.pricing, rfee.product_group, rfee.effective)
            if rkey in reactivation:
                scope = f" for {rfee.product_group}" if rfee.product_group else ""
                raise ValueError(
                    f"reactivation_fees[#{index}]: a second {rfee.pricing} fee{scope} "
                    f"effective {rfee.effective}"
                )
            reactivation.add(rkey)
        return self

    @property
    def source(self) -> str:
        """The file this policy was read from, or the built-in default's label."""
        return self._source

    # -- lookups -----------------------------------------------------------------------------

    def product_group_for(self, device: Device) -> tuple[ProductGroup | None, str]:
        """The device's product group and how it was found: policy pattern, inventory, catalogue."""
        if device.model:
            for rule in self.product_groups:
                for pattern in rule.models:
                    if pattern_matches(pattern, device.model):
                        return rule.id, f"model {device.model!r} matches policy pattern {pattern!r}"
        if device.product_group is not None:
            return device.product_group, "product group recorded in the inventory"
        if device.model:
            group = product_group_for_model(device.model)
            if group is not None:
                return group, f"model {device.model!r} found in the built-in catalogue"
        return None, "no model or product group recorded"

    def no_licensed_features(self, model: str | None) -> str | None:
        """Why a model has no licensed features, per `[licensing] no_licensed_features`; None
        when the policy declares no such thing for it."""
        if not model:
            return None
        for entry in self.licensing.no_licensed_features:
            if pattern_matches(entry.pattern, model):
                why = f": {entry.reason}" if entry.reason else ""
                return (
                    f"model {model!r} has no licensed features (policy {self.source}, pattern"
                    f" {entry.pattern!r}{why})"
                )
        return None

    def group_title(self, group: ProductGroup) -> str:
        for rule in self.product_groups:
            if rule.id is group:
                return rule.display
        return PRODUCT_GROUP_TITLES[group]

    def ppi_fee(self, group: ProductGroup, on: date) -> PpiFee | None:
        """The pay-per-incident fee of `group` in force on `on` (latest effective date <= on)."""
        in_force = [f for f in self.ppi_fees if f.product_group is group and f.effective <= on]
        return max(in_force, key=lambda f: f.effective, default=None)

    def reactivation_fee(
        self, pricing: Pricing, group: ProductGroup | None, on: date
    ) -> ReactivationFee | None:
        """The reactivation fee in force on `on`; a fee for the device's own group wins."""
        in_force = [f for f in self.reactivation_fees if f.pricing is pricing and f.effective <= on]
        specific = [f for f in in_force if group is not None and f.product_group is group]
        generic = [f for f in in_force if f.product_group is None]
        return max(specific or generic, key=lambda f: f.effective, default=None)

    def site_info(self, site: str | None) -> SiteInfo | None:
        """The policy's entry for a site (exact name first, then ignoring case)."""
        if site is None:
            return None
        if site in self.sites:
            return self.sites[site]
        folded = site.casefold()
        return next((v for k, v in self.sites.items() if k.casefold() == folded), None)

    def country_for(self, site: str | None) -> str:
        """The holiday calendar of a site: the policy's site map, else `sla.default_country`."""
        info = self.site_info(site)
        if info is not None and info.country:
            return info.country
        return self.sla.default_country


# -- loading -------------------------------------------------------------------------------------


def _key_path(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[#{item + 1}]")
        elif parts:
            parts.append(f".{item}")
        else:
            parts.append(str(item))
    return "".join(parts) or "(top level)"


def _describe(exc: ValidationError, source: str) -> str:
    problems = []
    for error in exc.errors():
        key = _key_path(tuple(error["loc"]))
        if error["type"] == "extra_forbidden":
            problems.append(f"key {key!r}: unknown key")
        elif error["type"] == "missing":
            problems.append(f"key {key!r}: required but missing")
        else:
            message = str(error["msg"]).removeprefix("Value error, ")
            problems.append(f"key {key!r}: {message} (got {error.get('input')!r})")
    return f"invalid policy file {source}: " + "; ".join(problems)


def parse_policy(text: str, source: str) -> Policy:
    """A Policy from TOML text; PolicyError names `source` and the offending key."""
    try:
        data = parse_toml(text, parse_float=Decimal)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"policy file {source} is not valid TOML: {exc}") from None
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(_describe(exc, source)) from None
    policy._source = source
    return policy


@lru_cache(maxsize=1)
def default_policy() -> Policy:
    """The policy shipped with the package (cached: it never changes at run time)."""
    text = resources.files("controller").joinpath(DEFAULT_POLICY_RESOURCE).read_text("utf-8")
    return parse_policy(text, DEFAULT_SOURCE)


def load_policy(path: Path | None) -> Policy:
    """The policy at `path`, or the shipped default when `path` is None."""
    if path is None:
        return default_policy()
    try:
        text = read_small_text(path)
    except FileNotFoundError:
        raise PolicyError(f"cannot read policy file {path}: no such file") from None
    except IsADirectoryError:
        raise PolicyError(f"cannot read policy file {path}: it is a directory") from None
    except UnicodeDecodeError:
        raise PolicyError(f"cannot read policy file {path}: not UTF-8 text") from None
    except OSError as exc:
        raise PolicyError(f"cannot read policy file {path}: {exc.strerror or exc}") from None
    return parse_policy(text, str(path))
