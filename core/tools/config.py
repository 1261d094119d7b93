"""A recipe's `[tools]` table: what its agents may reach. Everything is off until the
recipe names it: folders `read_file` / `list_dir` may read (relative to the recipe
file), hosts `http_get` may ask, whether `shell` exists at all, MCP servers to start,
and a Python module of the person's own tools.

    [tools]
    read_roots = ["samples"]
    http_hosts = ["example.org"]
    shell = true
    module = "my_tools.py"

    [tools.mcp.time]
    command = ["python", "-m", "mcp_server_time"]
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Strict(BaseModel):
    # The recipe schema's Strict, restated: the recipe schema imports this module.
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class McpServer(_Strict):
    """An MCP server started over stdio for the run's agents."""

    command: list[str] = Field(min_length=1, description="The program and its arguments.")
    env: dict[str, str] = Field(default_factory=dict, description="Extra environment.")
    timeout: float = Field(30.0, gt=0, le=600, description="Seconds for one tool call.")


class ToolsConfig(_Strict):
    """What a recipe's agents may reach (`[tools]`); nothing unless named here."""

    read_roots: list[str] = Field(default_factory=list, description="Folders read_file and "
                                  "list_dir may read, relative to the recipe file.")
    http_hosts: list[str] = Field(default_factory=list, description="Hosts http_get may "
                                  "ask (off when empty).")
    shell: bool = Field(False, description="Offer the shell tool; every command waits for "
                        "a person's approval.")
    module: str | None = Field(None, description="A Python file (relative to the recipe) "
                               "or module whose typed functions become tools.")
    corpus: str | None = Field(None, description="The index search_docs searches (made by "
                               "`podium index DIR --name NAME`, or from corpus_path).")
    corpus_path: str | None = Field(None, description="A folder of documents, relative to "
                                    "the recipe, indexed into `corpus` when an agent first "
                                    "uses search_docs (only changed files again).")
    mcp: dict[str, McpServer] = Field(default_factory=dict, description="MCP servers, by "
                                      "name: [tools.mcp.NAME] command = [...].")
    result_chars: int = Field(8000, ge=100, le=200_000, description="Longest tool result "
                              "an agent reads; longer ones are cut with a mark.")

    @field_validator("http_hosts")
    @classmethod
    def _hosts(cls, v: list[str]) -> list[str]:
        for host in v:
            if not host or "/" in host or " " in host:
                raise ValueError(f"'{host}' is not a host name: give the host alone, "
                                 "e.g. \"example.org\"")
        return v
