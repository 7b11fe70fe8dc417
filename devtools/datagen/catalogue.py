"""The vocabulary of the synthetic data: steps, statuses, error kinds and their pt-BR messages, incidents,
the bank outage, names of people and companies (from Faker, the only user of Faker), e-mail addresses,
CNPJ/CPF numbers with valid check digits, and amounts.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from devtools.datagen.binary_copy import Literal, Pool, Pooled, Text

# --------------------------------------------------------------------------------------------------
# Steps, statuses, notification kinds
# --------------------------------------------------------------------------------------------------

STEPS: tuple[str, ...] = ("nfse", "boleto", "charge_email", "mark_billed", "overdue_email")
STEP_NFSE, STEP_BOLETO, STEP_CHARGE_EMAIL, STEP_MARK_BILLED, STEP_OVERDUE_EMAIL = range(5)
INVOICE_STEPS = 4  # the steps run for every invoice on its billing day (all but overdue_email)
STATUSES: tuple[str, ...] = ("success", "failed", "rejected", "pending")
STATUS_SUCCESS, STATUS_FAILED, STATUS_REJECTED, STATUS_PENDING = range(4)
# Notification kinds, in the sort order of their codes (the primary key order of preferences).
KINDS: tuple[str, ...] = ("billing_errors", "contract_readjustment", "payables_due", "receivables_due")
KIND_BILLING_ERRORS = 0

# --------------------------------------------------------------------------------------------------
# Error kinds
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ErrorKind:
    """One realistic failure of a billing step. ``placeholder`` is appended to ``message`` per row."""

    step: int
    code: str
    status: int
    message: str
    placeholder: str | None = None  # "city" | "email"
    weight: float = 1.0  # relative frequency among sporadic failures of the step; 0 = never sporadic
    transient: bool = False  # typically succeeds on a retry


def _email_errors(step: int) -> list[ErrorKind]:
    return [
        ErrorKind(step, "550", STATUS_REJECTED, "550 5.1.1 Caixa postal inexistente: ", "email", 5.0),
        ErrorKind(step, "554", STATUS_REJECTED, "Mensagem rejeitada pelo servidor de destino (spam)", None, 2.0),
        ErrorKind(step, "552", STATUS_REJECTED, "552 5.2.2 Caixa postal cheia: ", "email", 1.5),
        ErrorKind(step, "553", STATUS_REJECTED, "553 5.1.3 Endereço de e-mail inválido: ", "email", 1.0),
        ErrorKind(
            step,
            "421",
            STATUS_FAILED,
            "421 4.7.0 Servidor de destino temporariamente indisponível, tente novamente mais tarde",
            None,
            1.0,
            True,
        ),
        ErrorKind(step, "535", STATUS_FAILED, "Falha de autenticação no servidor SMTP de envio (535 5.7.8)", None, 0.2),
    ]


# The bank outage of the "outage day" (scale XL): one bank's registration API down for the whole day.
OUTAGE_KIND = ErrorKind(
    STEP_BOLETO,
    "BANK-503",
    STATUS_FAILED,
    "API de registro de boletos do Banco Exemplo indisponível (HTTP 503 Service Unavailable)",
    None,
    0.0,
)

ERRORS: tuple[ErrorKind, ...] = (
    # NFS-e: the city hall rejects the RPS (rejected) or cannot be reached (failed).
    ErrorKind(STEP_NFSE, "E160", STATUS_REJECTED, "E160 - Código de serviço inválido para o município de ", "city", 3),
    ErrorKind(STEP_NFSE, "E45", STATUS_REJECTED, "E45 - CNPJ do tomador inválido", None, 2.0),
    ErrorKind(STEP_NFSE, "E10", STATUS_REJECTED, "E10 - RPS já informado", None, 1.0),
    ErrorKind(STEP_NFSE, "E181", STATUS_REJECTED, "E181 - Alíquota do ISS inválida para o código de serviço", None, 1),
    ErrorKind(STEP_NFSE, "TIMEOUT", STATUS_FAILED, "Prefeitura fora do ar (timeout após 60s)", None, 3.0, True),
    ErrorKind(
        STEP_NFSE, "HTTP_503", STATUS_FAILED, "Webservice da prefeitura indisponível (HTTP 503)", None, 1.5, True
    ),
    ErrorKind(STEP_NFSE, "CERT_EXPIRED", STATUS_FAILED, "Certificado digital A1 da empresa vencido", None, 0.3),
    # Boleto: the bank refuses the registration (rejected) or its API fails (failed).
    ErrorKind(STEP_BOLETO, "48", STATUS_REJECTED, "Banco recusou o registro: CEP do pagador inválido", None, 3.0),
    ErrorKind(STEP_BOLETO, "46", STATUS_REJECTED, "Banco recusou o registro: CPF/CNPJ do pagador inválido", None, 1.5),
    ErrorKind(STEP_BOLETO, "09", STATUS_REJECTED, "Banco recusou o registro: nosso número duplicado", None, 0.7),
    ErrorKind(STEP_BOLETO, "CONV_SEM_CARTEIRA", STATUS_FAILED, "Convênio bancário sem carteira cadastrada", None, 0.5),
    ErrorKind(STEP_BOLETO, "BANK_TIMEOUT", STATUS_FAILED, "Timeout na API de registro do banco (30s)", None, 1.5, True),
    ErrorKind(STEP_BOLETO, "HTTP_401", STATUS_FAILED, "Credenciais da API do banco expiradas (HTTP 401)", None, 0.3),
    # Emails to the customer (charge and overdue notices).
    *_email_errors(STEP_CHARGE_EMAIL),
    *_email_errors(STEP_OVERDUE_EMAIL),
    # Marking the invoice as billed.
    ErrorKind(
        STEP_MARK_BILLED,
        "LOCK_TIMEOUT",
        STATUS_FAILED,
        "Falha ao marcar como faturado: tempo limite de bloqueio excedido",
        None,
        1.0,
        True,
    ),
    ErrorKind(
        STEP_MARK_BILLED,
        "ERP_500",
        STATUS_FAILED,
        "Falha ao atualizar o status no ERP integrado (HTTP 500)",
        None,
        1,
        True,
    ),
    # Last, so that adding it moved no other kind's index.
    OUTAGE_KIND,
)
ERROR_STATUS = np.array([kind.status for kind in ERRORS])


def error_index(step: int, code: str) -> int:
    """Index into ERRORS of the step's error with that code."""
    return next(i for i, kind in enumerate(ERRORS) if kind.step == step and kind.code == code)


OUTAGE_ERROR = error_index(STEP_BOLETO, OUTAGE_KIND.code)

# Incidents: one error hitting (almost) every invoice of an entity for a while. (error index, max attempts)
INCIDENTS: tuple[tuple[int, int], ...] = (
    (error_index(STEP_NFSE, "TIMEOUT"), 3),
    (error_index(STEP_NFSE, "E160"), 1),
    (error_index(STEP_NFSE, "CERT_EXPIRED"), 2),
    (error_index(STEP_BOLETO, "CONV_SEM_CARTEIRA"), 1),
    (error_index(STEP_BOLETO, "HTTP_401"), 3),
    (error_index(STEP_CHARGE_EMAIL, "554"), 1),
    (error_index(STEP_CHARGE_EMAIL, "535"), 2),
)


def pick_errors(rng: np.random.Generator, steps: np.ndarray, transient_only: bool = False) -> np.ndarray:
    """An error (index into ERRORS) per row for the given steps, drawn by catalogue weights.

    With ``transient_only``, errors that are not transient are much less likely (failures fixed by a retry).
    """
    picked = np.full(len(steps), -1, np.int64)
    for step in np.unique(steps):
        candidates = [i for i, kind in enumerate(ERRORS) if kind.step == step and kind.weight > 0]
        weights = np.array(
            [ERRORS[i].weight * (0.15 if transient_only and not ERRORS[i].transient else 1.0) for i in candidates]
        )
        rows = np.flatnonzero(steps == step)
        picked[rows] = np.asarray(candidates)[rng.choice(len(candidates), len(rows), p=weights / weights.sum())]
    return picked


def failure_counts(rng: np.random.Generator, n: int) -> np.ndarray:
    """How many times an unresolved step failed: mostly once, sometimes up to 5 times."""
    return rng.choice([1, 2, 3, 4, 5], n, p=[0.70, 0.18, 0.08, 0.03, 0.01])


# --------------------------------------------------------------------------------------------------
# Places, business segments, mailboxes
# --------------------------------------------------------------------------------------------------

CITIES: tuple[str, ...] = (
    "São Paulo", "Rio de Janeiro", "Belo Horizonte", "Curitiba", "Porto Alegre", "Campinas", "Barueri",
    "Florianópolis", "Recife", "Salvador", "Fortaleza", "Goiânia", "Brasília", "Vitória", "Santos",
    "São José dos Campos", "Ribeirão Preto", "Joinville", "Londrina", "Uberlândia", "Manaus", "Belém", "Natal",
    "João Pessoa", "Maceió", "Sorocaba", "Osasco", "Niterói", "Blumenau", "Caxias do Sul",
)  # fmt: skip
SEGMENTS: tuple[str, ...] = (
    "Tecnologia", "Consultoria", "Serviços", "Engenharia", "Contabilidade", "Educação", "Logística", "Saúde",
    "Software", "Marketing", "Advocacia", "Arquitetura", "Telecom", "Segurança", "Facilities",
    "Medicina Diagnóstica", "Odontologia", "Academia", "Imobiliária", "Comunicação",
)  # fmt: skip
CONNECTORS: tuple[str, ...] = (" & ", " e ", " ")
ROLE_MAILBOXES: tuple[str, ...] = (
    "financeiro", "contato", "contasapagar", "nfe", "fiscal", "cobranca", "adm", "faturamento",
)  # fmt: skip
FREEMAIL: tuple[str, ...] = (
    "gmail.com", "hotmail.com", "outlook.com", "yahoo.com.br", "uol.com.br", "bol.com.br", "terra.com.br",
)  # fmt: skip

# --------------------------------------------------------------------------------------------------
# Names of people and companies
# --------------------------------------------------------------------------------------------------


def slug(text: str) -> str:
    """Lower-case ASCII letters and digits only ("São João" -> "saojoao"), for e-mail addresses."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in ascii_text.lower() if ch.isalnum())


@dataclass(frozen=True)
class NamePools:
    """The string pools names and addresses are assembled from."""

    first: Pool
    first_slug: Pool
    last: Pool
    last_capitalised: Pool  # "Da Silva", to start a company name
    space_last: Pool  # " " + last name
    last_slug: Pool
    connector: Pool
    space_segment: Pool  # " " + segment
    segment_slug: Pool
    space_suffix: Pool  # " " + company suffix ("Ltda.", "S.A.", ...)
    city: Pool
    role_mailbox: Pool
    freemail: Pool


@functools.lru_cache(maxsize=8)
def name_pools(seed: int) -> NamePools:
    """Brazilian first names, surnames and company suffixes from Faker (pt_BR), seeded."""
    from faker import Faker

    fake = Faker("pt_BR")
    fake.seed_instance(seed)
    first = sorted({fake.first_name() for _ in range(5000)})
    last = sorted({fake.last_name() for _ in range(5000)})
    suffixes = sorted({fake.company_suffix() for _ in range(300)})
    return NamePools(
        first=Pool(first),
        first_slug=Pool([slug(name) for name in first]),
        last=Pool(last),
        last_capitalised=Pool([name[:1].upper() + name[1:] for name in last]),
        space_last=Pool([" " + name for name in last]),
        last_slug=Pool([slug(name) for name in last]),
        connector=Pool(CONNECTORS),
        space_segment=Pool([" " + segment for segment in SEGMENTS]),
        segment_slug=Pool([slug(segment) for segment in SEGMENTS]),
        space_suffix=Pool([" " + suffix for suffix in suffixes]),
        city=Pool(CITIES),
        role_mailbox=Pool(ROLE_MAILBOXES),
        freemail=Pool(FREEMAIL),
    )


def company_names_and_domains(rng: np.random.Generator, pools: NamePools, n: int) -> tuple[Text, Text]:
    """Company names ("Silva & Souza Tecnologia Ltda.") and matching domains ("silvasouza.com.br")."""
    first_surname = rng.integers(0, len(pools.last), n)
    second_surname = rng.integers(0, len(pools.last), n)
    has_second = rng.random(n) < 0.5
    connector = rng.integers(0, len(pools.connector), n)
    segment = rng.integers(0, len(pools.space_segment), n)
    has_segment = rng.random(n) < 0.6
    suffix = rng.integers(0, len(pools.space_suffix), n)
    name: Text = [
        Pooled.of(pools.last_capitalised, first_surname),
        Pooled.of(pools.connector, connector, has_second),
        Pooled.of(pools.last, second_surname, has_second),
        Pooled.of(pools.space_segment, segment, has_segment),
        Pooled.of(pools.space_suffix, suffix),
    ]
    domain: Text = [
        Pooled.of(pools.last_slug, first_surname),
        Pooled.of(pools.last_slug, second_surname, has_second),
        Pooled.of(pools.segment_slug, segment, has_segment),
        Literal(".com.br"),
    ]
    return name, domain


def person_names(rng: np.random.Generator, pools: NamePools, n: int) -> tuple[Text, np.ndarray, np.ndarray]:
    """Person names ("Maria Souza Lima"); returns the name, first-name index and final-surname index."""
    first_name = rng.integers(0, len(pools.first), n)
    surname = rng.integers(0, len(pools.last), n)
    second_surname = rng.integers(0, len(pools.last), n)
    has_second = rng.random(n) < 0.55
    name: Text = [
        Pooled.of(pools.first, first_name),
        Literal(" "),
        Pooled.of(pools.last, surname),
        Pooled.of(pools.space_last, second_surname, has_second),
    ]
    return name, first_name, np.where(has_second, second_surname, surname)


# --------------------------------------------------------------------------------------------------
# Documents (CNPJ, CPF)
# --------------------------------------------------------------------------------------------------

_CNPJ_WEIGHTS_1 = (5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2)
_CNPJ_WEIGHTS_2 = (6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2)


def _check_digit(digits: np.ndarray, weights: Sequence[int]) -> np.ndarray:
    remainder = (digits @ np.asarray(weights, dtype=np.int64)) % 11
    return np.where(remainder < 2, 0, 11 - remainder)


def digits_of(values: np.ndarray, n: int) -> np.ndarray:
    """The ``n`` decimal digits of each value, most significant first, as an (len, n) matrix."""
    return (values[:, None] // (10 ** np.arange(n - 1, -1, -1, dtype=np.int64))) % 10


def _with_check_digits(digits: np.ndarray, weights_1: Sequence[int], weights_2: Sequence[int]) -> np.ndarray:
    digits = digits.astype(np.int64, copy=False)
    check_1 = _check_digit(digits, weights_1)
    check_2 = _check_digit(np.column_stack([digits, check_1]), weights_2)
    base = digits @ (10 ** np.arange(digits.shape[1] - 1, -1, -1, dtype=np.int64))
    return base * 100 + check_1 * 10 + check_2


def cnpj_from_digits(digits_12: np.ndarray) -> np.ndarray:
    """Valid 14-digit CNPJs (as integers) from (n, 12) digit matrices (8-digit root + 4-digit branch)."""
    return _with_check_digits(digits_12, _CNPJ_WEIGHTS_1, _CNPJ_WEIGHTS_2)


def cpf_from_digits(digits_9: np.ndarray) -> np.ndarray:
    """Valid 11-digit CPFs (as integers) from (n, 9) digit matrices."""
    return _with_check_digits(digits_9, range(10, 1, -1), range(11, 1, -1))


def customer_documents(rng: np.random.Generator, is_company: np.ndarray) -> np.ndarray:
    """A CNPJ (branch 0001..0004) for company customers, a CPF for people, as integers."""
    companies = np.flatnonzero(is_company)
    people = np.flatnonzero(~is_company)
    cnpj_digits = np.zeros((len(companies), 12), np.int64)
    cnpj_digits[:, :8] = rng.integers(0, 10, (len(companies), 8))
    cnpj_digits[:, 11] = rng.integers(1, 5, len(companies))
    cpf_digits = rng.integers(0, 10, (len(people), 9))
    all_same = (cpf_digits == cpf_digits[:, :1]).all(axis=1)  # no 111.111.111-xx
    cpf_digits[:, 8] = np.where(all_same, (cpf_digits[:, 8] + 1) % 10, cpf_digits[:, 8])
    document = np.zeros(len(is_company), np.int64)
    document[companies] = cnpj_from_digits(cnpj_digits)
    document[people] = cpf_from_digits(cpf_digits)
    return document


# --------------------------------------------------------------------------------------------------
# Amounts (cents)
# --------------------------------------------------------------------------------------------------

MIN_AMOUNT_CENTS = 5_000
MAX_AMOUNT_CENTS = 5_000_000


def _lognormal_cents(rng: np.random.Generator, median_cents: int, sigma: float, n: int) -> np.ndarray:
    cents = np.round(np.exp(rng.normal(np.log(median_cents), sigma, n)))
    return np.clip(cents, MIN_AMOUNT_CENTS, MAX_AMOUNT_CENTS)


def contract_amounts(rng: np.random.Generator, n: int) -> np.ndarray:
    """Monthly contract values: lognormal around R$ 600, between R$ 50 and R$ 50,000."""
    return _lognormal_cents(rng, 60_000, 1.15, n).astype(np.int64)


def invoice_amounts(rng: np.random.Generator, contract_cents: np.ndarray, no_contract: np.ndarray) -> np.ndarray:
    """Invoice values: the contract's (30% of them varying by -15%..+25%), or their own without a contract."""
    n = len(contract_cents)
    variable = rng.random(n) < 0.3
    cents = np.where(variable, np.round(contract_cents * rng.uniform(0.85, 1.25, n)), contract_cents)
    own_cents = _lognormal_cents(rng, 40_000, 1.2, n)
    return np.clip(np.where(no_contract, own_cents, cents), MIN_AMOUNT_CENTS, MAX_AMOUNT_CENTS).astype(np.int64)
