"""Reading spec files (jobs/loading.py): YAML, names, workdirs relative to the file, and
errors that name the file."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from jobs.loading import SpecError, load_spec
from tests.spec_helpers import NOW, error_of, parse, write

# -- workdir -------------------------------------------------------------------------------


def test_workdir_that_does_not_exist(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    message = error_of({"run": "x", "workdir": str(missing)})
    assert message == f"job.yaml: workdir: directory {str(missing)!r} does not exist"


def test_workdir_that_is_a_file(tmp_path: Path) -> None:
    file = write(tmp_path / "file.txt", "hi")
    assert error_of({"run": "x", "workdir": str(file)}).endswith("does not exist")


def test_relative_workdir_resolved_against_base_dir(tmp_path: Path) -> None:
    (tmp_path / "code").mkdir()
    spec = parse({"run": "x", "workdir": "code"}, base_dir=tmp_path)
    assert spec.workdir == str((tmp_path / "code").resolve())
    assert Path(spec.workdir).is_absolute()


def test_relative_workdir_without_base_dir_uses_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "code").mkdir()
    monkeypatch.chdir(tmp_path)
    spec = parse({"run": "x", "workdir": "code"})
    assert spec.workdir == str((tmp_path / "code").resolve())


# -- load_spec -----------------------------------------------------------------------------


def test_load_spec_reads_yaml_and_defaults_name_to_stem(tmp_path: Path) -> None:
    path = write(
        tmp_path / "train.yaml",
        "run: python train.py\nresources:\n  accelerators: [A100:8, H100:8]\n",
    )
    spec = load_spec(path, now=NOW)
    assert spec.name == "train"
    assert spec.run == "python train.py"
    assert [str(a) for a in spec.accelerator_options] == ["A100:8", "H100:8"]


def test_load_spec_keeps_explicit_name(tmp_path: Path) -> None:
    path = write(tmp_path / "train.yaml", "name: other\nrun: x\n")
    assert load_spec(str(path), now=NOW).name == "other"


def test_load_spec_default_name_is_sanitised(tmp_path: Path) -> None:
    path = write(tmp_path / "my job!.yaml", "run: x\n")
    assert load_spec(path, now=NOW).name == "my-job"


def test_load_spec_resolves_workdir_relative_to_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    specs = tmp_path / "specs"
    (specs / "code").mkdir(parents=True)
    path = write(specs / "job.yaml", "run: x\nworkdir: code\n")
    monkeypatch.chdir(tmp_path)  # not the spec's directory
    spec = load_spec(path, now=NOW)
    assert spec.workdir == str((specs / "code").resolve())
    assert Path(spec.workdir).is_absolute()


def test_load_spec_missing_workdir_names_file(tmp_path: Path) -> None:
    path = write(tmp_path / "job.yaml", "run: x\nworkdir: nowhere\n")
    with pytest.raises(SpecError) as info:
        load_spec(path, now=NOW)
    assert str(info.value) == (
        f"{path}: workdir: directory {str(tmp_path / 'nowhere')!r} does not exist"
    )


def test_load_spec_env_numbers_become_strings(tmp_path: Path) -> None:
    path = write(tmp_path / "job.yaml", "run: x\nenv:\n  STEPS: 100\n  LR: 1.5e-3\n  FLAG: yes\n")
    assert load_spec(path, now=NOW).env == {"STEPS": "100", "LR": "0.0015", "FLAG": "true"}


def test_load_spec_yaml_timestamp_deadline(tmp_path: Path) -> None:
    path = write(tmp_path / "job.yaml", "run: x\nconstraints:\n  deadline: 2026-12-01T09:00:00Z\n")
    assert load_spec(path, now=NOW).deadline_at(NOW) == datetime(2026, 12, 1, 9, tzinfo=UTC)


def test_load_spec_malformed_yaml_has_line_number(tmp_path: Path) -> None:
    path = write(tmp_path / "job.yaml", "run: x\nenv:\n  A: 1\n  B: [unclosed\n")
    with pytest.raises(SpecError) as info:
        load_spec(path, now=NOW)
    message = str(info.value)
    assert message.startswith(f"{path}: line ")
    assert "malformed YAML" in message
    assert "\n" not in message
    line = int(message.removeprefix(f"{path}: line ").split(":")[0])
    assert line >= 4  # the bad flow sequence starts on line 4


def test_load_spec_bad_indentation_line_number(tmp_path: Path) -> None:
    path = write(tmp_path / "job.yaml", "run: x\n  bad: value\n")
    with pytest.raises(SpecError, match=r": line 2: malformed YAML: mapping values"):
        load_spec(path, now=NOW)


def test_load_spec_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(SpecError) as info:
        load_spec(path, now=NOW)
    assert str(info.value) == f"{path}: file does not exist"


def test_load_spec_directory(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"is a directory, not a spec file"):
        load_spec(tmp_path, now=NOW)


def test_load_spec_top_level_list(tmp_path: Path) -> None:
    path = write(tmp_path / "job.yaml", "- run: x\n- run: y\n")
    with pytest.raises(SpecError) as info:
        load_spec(path, now=NOW)
    assert str(info.value) == f"{path}: the spec must be a mapping of fields, got list"


def test_load_spec_empty_file(tmp_path: Path) -> None:
    path = write(tmp_path / "job.yaml", "")
    with pytest.raises(SpecError, match="must be a mapping of fields, got NoneType"):
        load_spec(path, now=NOW)


def test_load_spec_field_error_names_file_and_path(tmp_path: Path) -> None:
    path = write(tmp_path / "job.yaml", "run: x\nconstraints:\n  max_price_per_hr: 3\n")
    with pytest.raises(SpecError) as info:
        load_spec(path, now=NOW)
    assert str(info.value) == f"{path}: constraints.max_price_per_hr: unknown field"


def test_load_spec_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_bytes(b"run: \xff\xfe\n")
    with pytest.raises(SpecError, match=r": cannot read: "):
        load_spec(path, now=NOW)


def test_a_workdir_name_too_long_for_the_filesystem_is_one_line(tmp_path: Path) -> None:
    """Path.is_dir() answers False for a missing directory but raises for a name longer
    than the filesystem allows; hypothesis found it as a traceback."""
    message = error_of({"run": "x", "workdir": "x" * 300})
    assert message.endswith("workdir: File name too long"), message


def test_a_name_left_empty_defaults_to_the_file_stem_like_a_missing_one(tmp_path: Path) -> None:
    """Found by hypothesis: `name:` with no value was stored as "job", not the file's stem."""
    path = tmp_path / "train-run.yaml"
    path.write_text("name:\nrun: python train.py\n")
    assert load_spec(path, now=NOW).name == "train-run"
