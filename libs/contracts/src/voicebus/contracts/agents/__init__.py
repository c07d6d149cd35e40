"""Agents as their owners write them: definitions, flows, tools, and the rules they obey.

Pure types and functions: the orchestrator stores and runs them, the edge and the
``voicebus agent`` command validate with the same code before sending.
"""

from voicebus.contracts.agents.analysis import (
    CALLER_MEMORY,
    CALLER_NAME,
    MEMORY_VARIABLES,
    AnalysisSettings,
    MemorySettings,
    SuccessMode,
)
from voicebus.contracts.agents.definition import (
    AgentDefinition,
    Hygiene,
    LLMSettings,
    McpServer,
    McpTransport,
    SpeechChoice,
    TurnConfig,
    VariableSpec,
    VariableType,
)
from voicebus.contracts.agents.flow import (
    CollectDigits,
    ContextStrategy,
    Flow,
    FlowAction,
    FlowNode,
    Handoff,
    NodePosition,
    Transition,
)
from voicebus.contracts.agents.knowledge import SEARCH_KNOWLEDGE, KnowledgeMode, KnowledgeSettings
from voicebus.contracts.agents.tools import (
    AgentTool,
    DataTool,
    DoNotCallTool,
    EndCallTool,
    HttpMethod,
    SendDtmfTool,
    TransferCallTool,
    TransferDestination,
    WebhookRef,
    WebhookSettings,
    WebhookTool,
)
from voicebus.contracts.agents.validation import (
    DefinitionError,
    Problem,
    check_context,
    check_definition,
    context_values,
    parse_definition,
    template_names,
)
from voicebus.contracts.commands import TransferMode

__all__ = [
    "CALLER_MEMORY",
    "CALLER_NAME",
    "MEMORY_VARIABLES",
    "SEARCH_KNOWLEDGE",
    "AgentDefinition",
    "AgentTool",
    "AnalysisSettings",
    "CollectDigits",
    "ContextStrategy",
    "DataTool",
    "DefinitionError",
    "DoNotCallTool",
    "EndCallTool",
    "Flow",
    "FlowAction",
    "FlowNode",
    "Handoff",
    "HttpMethod",
    "Hygiene",
    "KnowledgeMode",
    "KnowledgeSettings",
    "LLMSettings",
    "McpServer",
    "McpTransport",
    "MemorySettings",
    "NodePosition",
    "Problem",
    "SendDtmfTool",
    "SpeechChoice",
    "SuccessMode",
    "TransferCallTool",
    "TransferDestination",
    "TransferMode",
    "Transition",
    "TurnConfig",
    "VariableSpec",
    "VariableType",
    "WebhookRef",
    "WebhookSettings",
    "WebhookTool",
    "check_context",
    "check_definition",
    "context_values",
    "parse_definition",
    "template_names",
]
