"""Generation of the master data: entities (companies), users, their billing access and notification
preferences, customers and contracts. Each table draws from its own random stream.
"""

from __future__ import annotations

import numpy as np

from devtools.datagen.binary_copy import Digits, Literal, Pooled, Text, text_choose, text_take
from devtools.datagen.catalogue import (
    KINDS,
    NamePools,
    cnpj_from_digits,
    company_names_and_domains,
    contract_amounts,
    customer_documents,
    digits_of,
    person_names,
)
from devtools.datagen.sampling import (
    DAY,
    HOUR,
    distinct_ints,
    rank_within_groups,
    rng_for,
    sequence_ids,
)
from devtools.datagen.scales import Scale
from devtools.datagen.world import Access, Calendar, Contracts, Customers, Entities, Preferences, Users


def _billing_weights(rng: np.random.Generator, n: int) -> np.ndarray:
    """Billing volume weights: lognormal, plus one "giant" per 10,000 entities with ~1% of the volume each
    (so that at scale L an incident at a giant produces thousands of errors)."""
    weights = rng.lognormal(0.0, 2.0, n)
    giants = np.argsort(weights)[-max(1, n // 10_000) :]
    weights[giants] = weights.sum() * rng.uniform(0.008, 0.015, len(giants))
    return weights


def generate_entities(scale: Scale, seed: int, pools: NamePools, calendar: Calendar) -> Entities:
    rng = rng_for(seed, "entities")
    n = scale.entities
    day_start = int(calendar.start[0])
    deleted = rng.random(n) < 0.01
    active = ~deleted & (rng.random(n) >= 0.025)
    # Deleted during the digest day: their window errors exist but they must get no digest.
    deleted_at = np.where(deleted, day_start + rng.integers(0, 20 * HOUR, n), -1)
    name, domain = company_names_and_domains(rng, pools, n)
    return Entities(
        n=n,
        id=sequence_ids(rng, n, 1000),
        weight=_billing_weights(rng, n),
        cnpj=cnpj_from_digits(digits_of(distinct_ints(rng, n, 10_000_000, 100_000_000) * 10_000 + 1, 12)),
        active=active,
        deleted_at=deleted_at,
        created_at=day_start - rng.integers(60 * DAY, 3000 * DAY, n),
        city=rng.integers(0, len(pools.city), n),
        name=name,
        domain=domain,
    )


def generate_users(scale: Scale, seed: int, pools: NamePools, entities: Entities, calendar: Calendar) -> Users:
    """Users, each belonging to a home entity (big entities have more), e-mail ``first.last+id@domain``."""
    rng = rng_for(seed, "users")
    n = max(entities.n, round(entities.n * scale.users_per_entity))
    size = np.sqrt(entities.weight)
    extra_homes = rng.choice(entities.n, n - entities.n, p=size / size.sum())
    home_entity = np.concatenate([np.arange(entities.n), extra_homes])[rng.permutation(n)]
    ids = sequence_ids(rng, n, 10_000)
    name, first_name, surname = person_names(rng, pools, n)
    email: Text = [
        Pooled.of(pools.first_slug, first_name),
        Literal("."),
        Pooled.of(pools.last_slug, surname),
        Literal("+"),
        Digits(ids),
        Literal("@"),
        *text_take(entities.domain, home_entity),
    ]
    day_start = int(calendar.start[0])
    return Users(
        n=n,
        id=ids,
        home_entity=home_entity,
        active=rng.random(n) >= 0.03,
        no_email=rng.random(n) < 0.004,
        created_at=day_start - rng.integers(2 * DAY, 2000 * DAY, n),
        name=name,
        email=email,
    )


def _access_pairs(
    rng: np.random.Generator, scale: Scale, entities: Entities, users: Users
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(user, entity) pairs: billing users of their home entity, some of other entities, accountants."""
    rank_at_home = rank_within_groups(users.home_entity, rng)
    no_billing_user = rng.random(entities.n) < 0.02
    mean_extra = max(scale.billing_users_per_entity - 1, 0)
    billing_users = np.where(no_billing_user, 0, 1 + rng.poisson(mean_extra, entities.n))
    holders = np.flatnonzero(rank_at_home < billing_users[users.home_entity])
    user_parts, entity_parts = [holders], [users.home_entity[holders]]
    # Some users (consultants, group companies) also see 1-3 other entities.
    multi = holders[rng.random(len(holders)) < 0.04]
    if len(multi) and entities.n > 1:
        others = rng.integers(1, 4, len(multi))
        user_parts.append(np.repeat(multi, others))
        entity_parts.append(rng.choice(entities.n, int(others.sum()), p=entities.weight / entities.weight.sum()))
    # A few accounting offices see many entities each.
    n_offices = max(1, entities.n // 2500)
    for office in rng.choice(users.n, min(n_offices, users.n), replace=False):
        clients = int(rng.integers(min(10, entities.n), min(150, entities.n) + 1))
        user_parts.append(np.full(clients, office))
        entity_parts.append(rng.choice(entities.n, clients, replace=False))
    return user_parts, entity_parts


def generate_access(scale: Scale, seed: int, entities: Entities, users: Users, calendar: Calendar) -> Access:
    rng = rng_for(seed, "access")
    user_parts, entity_parts = _access_pairs(rng, scale, entities, users)
    key = np.unique(np.concatenate(user_parts).astype(np.int64) * entities.n + np.concatenate(entity_parts))
    user, entity = np.divmod(key, entities.n)
    day_start = int(calendar.start[0])
    n = len(key)
    granted_at = day_start - rng.integers(2 * DAY, 1500 * DAY, n)
    revoked = rng.random(n) < 0.03
    revoked_after = ((day_start - DAY - granted_at) * rng.uniform(0.1, 1.0, n)).astype(np.int64)
    return Access(user, entity, granted_at, np.where(revoked, granted_at + revoked_after, -1))


def generate_preferences(seed: int, users: Users, access: Access, calendar: Calendar) -> Preferences:
    """Mostly on for billing users (``billing_errors``), plus rows of the other kinds."""
    rng = rng_for(seed, "prefs")
    n = users.n
    has_access = np.bincount(access.user, minlength=n) > 0
    draw = rng.random(n)
    has_row = np.where(has_access, draw < 0.88, draw < 0.12)
    enabled_if_row = np.where(has_access, draw < 0.80, draw < 0.08)
    user_parts = [np.flatnonzero(has_row)]
    kind_parts = [np.zeros(int(has_row.sum()), np.int64)]
    enabled_parts = [enabled_if_row[has_row]]
    for kind in range(1, len(KINDS)):
        has_row = rng.random(n) < 0.3
        user_parts.append(np.flatnonzero(has_row))
        kind_parts.append(np.full(int(has_row.sum()), kind))
        enabled_parts.append(rng.random(int(has_row.sum())) < 0.7)
    user = np.concatenate(user_parts)
    kind = np.concatenate(kind_parts)
    enabled = np.concatenate(enabled_parts)
    order = np.lexsort((kind, user))
    updated_at = int(calendar.start[0]) - rng.integers(DAY, 700 * DAY, len(order))
    return Preferences(user[order], kind[order], enabled[order], updated_at)


def _generate_contracts(scale: Scale, seed: int, entities: Entities) -> tuple[Contracts, np.ndarray]:
    """Contracts spread over entities by billing volume, each with one of its entity's customers.

    Returns the contracts and the entity of each customer (about 0.85 customers per contract)."""
    rng = rng_for(seed, "contracts")
    n_entities = entities.n
    n = max(n_entities, round(scale.contracts_per_day_invoice * scale.day_invoices))
    per_entity = 1 + rng.multinomial(n - n_entities, entities.weight / entities.weight.sum())
    customers_per_entity = np.maximum(1, np.ceil(0.85 * per_entity).astype(np.int64))
    n_customers = int(customers_per_entity.sum())
    customer_entity = np.repeat(np.arange(n_entities), customers_per_entity)[rng.permutation(n_customers)]
    customers_by_entity = np.argsort(customer_entity, kind="stable")
    first_customer = np.concatenate(([0], np.cumsum(customers_per_entity)[:-1]))
    entity = np.repeat(np.arange(n_entities), per_entity)[rng.permutation(n)]
    nth_customer = (rng.random(n) * customers_per_entity[entity]).astype(np.int64)
    customer = customers_by_entity[first_customer[entity] + nth_customer]
    requires = np.column_stack([rng.random(n) < 0.85, rng.random(n) < 0.70, rng.random(n) < 0.90])
    amount_cents = contract_amounts(rng, n)
    contracts = Contracts(n, sequence_ids(rng, n, 20_000, 2), entity, customer, requires, amount_cents)
    return contracts, customer_entity


def _generate_customers(seed: int, pools: NamePools, customer_entity: np.ndarray) -> Customers:
    """Companies (CNPJ, role mailbox at their domain) and people (CPF, free mail)."""
    rng = rng_for(seed, "customers")
    n = len(customer_entity)
    is_company = rng.random(n) < 0.55
    document = customer_documents(rng, is_company)
    company_name, company_domain = company_names_and_domains(rng, pools, n)
    person_name, first_name, surname = person_names(rng, pools, n)
    number = rng.integers(1, 100, n)
    has_number = rng.random(n) < 0.4
    company_email: Text = [
        Pooled.of(pools.role_mailbox, rng.integers(0, len(pools.role_mailbox), n)),
        Literal("@"),
        *company_domain,
    ]
    person_email: Text = [
        Pooled.of(pools.first_slug, first_name),
        Literal("."),
        Pooled.of(pools.last_slug, surname),
        Digits(number, 0, has_number),
        Literal("@"),
        Pooled.of(pools.freemail, rng.integers(0, len(pools.freemail), n)),
    ]
    return Customers(
        n=n,
        id=sequence_ids(rng, n, 50_000, 2),
        entity=customer_entity,
        document=document,
        is_company=is_company,
        name=text_choose(is_company, company_name, person_name),
        email=text_choose(is_company, company_email, person_email),
    )


def generate_customers_and_contracts(
    scale: Scale, seed: int, pools: NamePools, entities: Entities
) -> tuple[Customers, Contracts]:
    contracts, customer_entity = _generate_contracts(scale, seed, entities)
    return _generate_customers(seed, pools, customer_entity), contracts
