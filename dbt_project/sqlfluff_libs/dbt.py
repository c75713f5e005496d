"""Stand-ins for dbt's cross-database macros (`dbt.datediff`, ...) when sqlfluff lints the models with its
jinja templater (`library_path` in .sqlfluff): each renders the DuckDB form, so models lint as DuckDB SQL."""


def datediff(first_date: str, second_date: str, datepart: str) -> str:
    return f"date_diff('{datepart}', {first_date}, {second_date})"


def dateadd(datepart: str, interval: str, from_date_or_timestamp: str) -> str:
    return f"{from_date_or_timestamp} + interval ({interval}) {datepart}"


def type_string() -> str:
    return "varchar"


def type_float() -> str:
    return "double"


def safe_cast(field: str, type_: str) -> str:
    return f"try_cast({field} as {type_})"
