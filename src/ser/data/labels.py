"""Class groupings: which class, if any, each clip belongs to."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from ser.params import LabelParams


@dataclass(frozen=True)
class LabelSpec:
    """Everything needed to label a clip, stored beside the model so predictions need no params."""

    grouping: str
    classes: Mapping[str, Sequence[str]]  # class -> emotions, in output order
    gender: str  # both | male | female
    by_gender: bool

    @classmethod
    def from_params(cls, params: LabelParams) -> LabelSpec:
        return cls(params.grouping, params.classes, params.gender, params.by_gender)

    @classmethod
    def from_dict(cls, raw: Mapping) -> LabelSpec:
        classes = {name: tuple(emotions) for name, emotions in raw["classes"].items()}
        return cls(raw["grouping"], classes, raw["gender"], raw["by_gender"])

    def to_dict(self) -> dict:
        return {
            "grouping": self.grouping,
            "classes": {name: list(emotions) for name, emotions in self.classes.items()},
            "gender": self.gender,
            "by_gender": self.by_gender,
        }

    @property
    def genders(self) -> tuple[str, ...]:
        return ("male", "female") if self.gender == "both" else (self.gender,)

    @property
    def class_names(self) -> tuple[str, ...]:
        """The model's output classes, in order."""
        if self.by_gender:
            return tuple(f"{gender}_{name}" for gender in self.genders for name in self.classes)
        return tuple(self.classes)

    def label(self, *, emotion: str, gender: str) -> str | None:
        """The class of a clip, or None when the grouping or gender filter leaves it out.

        A clip of unknown gender (CREMA-D without its demographics) is kept only when no
        gender is asked for: labels.gender both and labels.by_gender false.
        """
        if gender not in self.genders and (self.gender != "both" or self.by_gender):
            return None
        for name, emotions in self.classes.items():
            if emotion in emotions:
                return f"{gender}_{name}" if self.by_gender else name
        return None

    def unmapped(self, clips: pd.DataFrame) -> dict[str, int]:
        """Clip count per emotion that no class of the grouping takes, most frequent first."""
        grouped = {emotion for emotions in self.classes.values() for emotion in emotions}
        dropped = clips.loc[~clips["emotion"].isin(grouped), "emotion"]
        return {str(emotion): int(count) for emotion, count in dropped.value_counts().items()}

    def assign(self, clips: pd.DataFrame) -> pd.Series:
        """Class per clip (index aligned with ``clips``); None where the clip is dropped."""
        return pd.Series(
            [
                self.label(emotion=emotion, gender=gender)
                for emotion, gender in zip(clips["emotion"], clips["gender"], strict=True)
            ],
            index=clips.index,
            dtype=object,
        )
