"""A two-agent flow the end-to-end and resilience tests run (and an example to copy).

``support``: greets, moves to identity verification when the caller mentions an
account, collects a PIN on the keypad, looks the account up with the tenant's
webhook tool ``lookup_account`` (signed; the business checks the signature),
then hands over to ``billing``, which greets the caller by name with the balance
it was handed and transfers to a person on request. Both use the deterministic
``scripted`` LLM.
"""

from __future__ import annotations

from typing import Any, Final

HUMAN_NUMBER: Final = "+14155550123"
"""Where billing transfers a caller who asks for a person."""
PIN: Final = "1234"
ACCOUNTS: Final = {PIN: {"name": "Ada", "balance": "42 dollars"}}


def lookup_account_tool(business_url: str, secret: str) -> dict[str, Any]:
    """The tenant's webhook tool: ``GET <business>/accounts/{{pin}}``, signed with ``secret``."""
    return {
        "name": "lookup_account",
        "description": "Look an Acme account up by the caller's PIN.",
        "method": "GET",
        "url": f"{business_url}/accounts/{{{{pin}}}}",
        "parameters": {"type": "object", "properties": {"pin": {"type": "string"}},
                       "required": ["pin"]},
        "timeout_s": 3,
        "retries": 1,
        "signing_secret": secret,
    }  # fmt: skip


def support_agent() -> dict[str, Any]:
    """Greeting → keypad verification → account lookup → handoff to billing."""
    rules = [
        {"match": r"\baccount\b", "reply": "Sure, I can help with your account.",
         "tool": "start_verification", "args": {"reason": "account question"}},
        {"match": r"The caller is (?P<name>[A-Za-z]+)\.",
         "reply": "Thank you {{name}}, you are verified.", "tool": "to_billing"},
        {"match": r"\b(bye|goodbye)\b", "tool": "end_call"},
    ]  # fmt: skip
    return {
        "name": "Acme support (flow)",
        "system_prompt": "You are Acme's support agent. Keep answers short.",
        "greeting": "Hi, this is Acme support. How can I help?",
        "goodbye": "Goodbye!",
        "llm": {"engine": "scripted",
                "options": {"rules": rules, "default": "I can help with account questions."}},
        "stt": {"engine": "whisper-local", "options": {"language": "en"}},
        "tts": {"engine": "hibari", "options": {"voice": "heart"}},
        "tools": [{"type": "end_call"}, {"type": "webhook", "name": "lookup_account"}],
        "flow": {"initial": "greet", "nodes": [
            {"id": "greet", "task": "Ask how you can help.", "tools": ["end_call"],
             "transitions": [{"name": "start_verification",
                              "description": "The caller has a question about an account.",
                              "target": "verify",
                              "parameters": {"type": "object",
                                             "properties": {"reason": {"type": "string"}}}}]},
            {"id": "verify",
             "collect_digits": {"variable": "pin", "min_length": 4, "max_length": 8,
                                "inter_digit_timeout_s": 5, "next": "lookup"},
             "pre_actions": [{"say": "Please key in your four digit PIN, then press pound."}]},
            {"id": "lookup", "tools": [],
             "pre_actions": [{"tool": "lookup_account", "args": {"pin": "{{pin}}"},
                              "result_variable": "account"}],
             "task": "The caller is {{account.name}}. Confirm, then hand over to billing.",
             "post_actions": [{"set": {"customer_name": "{{account.name}}",
                                       "balance": "{{account.balance}}"}}],
             "transitions": [{"name": "to_billing", "description": "Verified: go to billing.",
                              "target": "billing", "context": "reset"}]},
            {"id": "billing", "handoff": {"agent_id": "billing", "context": "keep",
                                          "announce": "I am passing you to our billing team."}},
        ]},
    }  # fmt: skip


def billing_agent() -> dict[str, Any]:
    """Greets with the variables it was handed; transfers to a person on request."""
    rules = [
        {"match": r"\b(person|human|someone|agent)\b", "tool": "transfer_call",
         "args": {"destination": "human"}},
        {"match": r"\b(bye|goodbye)\b", "tool": "end_call"},
    ]  # fmt: skip
    return {
        "name": "Acme billing",
        "system_prompt": "You are Acme billing. The caller is {{customer_name}}.",
        "variables": [{"name": "customer_name", "default": "there"}, {"name": "balance"}],
        "greeting": "Billing here, {{customer_name}}. Your balance is {{balance}}.",
        "goodbye": "Goodbye from billing!",
        "llm": {"engine": "scripted",
                "options": {"rules": rules, "default": "I can transfer you to a person."}},
        "stt": {"engine": "whisper-local", "options": {"language": "en"}},
        "tts": {"engine": "hibari", "options": {"voice": "heart"}},
        "tools": [
            {"type": "end_call"},
            {"type": "transfer_call", "mode": "warm",
             "announcement": "A verified caller has a billing question.",
             "destinations": [{"name": "human", "number": HUMAN_NUMBER,
                               "description": "A person in billing."}]},
        ],
    }  # fmt: skip
