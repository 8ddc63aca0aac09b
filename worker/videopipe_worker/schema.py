"""The shape Gemini must answer in (its response schema) and summary.json is made from.

A module of its own so that pydantic is imported only when a summary is asked for.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class Chapter(BaseModel):
    start_seconds: float = Field(description="Start of the chapter, seconds from the beginning")
    title: str
    summary: str


class VideoSummary(BaseModel):
    title: str
    summary: str
    chapters: list[Chapter]
    keywords: list[str]


__all__ = ["Chapter", "VideoSummary"]
