"""Attributes decoded from their bytes, each distinct one once: the same values, typed as
OTLP has them, as decoding each span's attributes afresh gives."""

from __future__ import annotations

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList

from tracebaton.collector._anyvalue import attribute_dict, attribute_dict_of_bytes


def _attributes() -> list[KeyValue]:
    return [
        KeyValue(key="http.route", value=AnyValue(string_value="/api/cart/{cart_id}")),
        KeyValue(key="http.status_code", value=AnyValue(int_value=503)),
        KeyValue(key="retried", value=AnyValue(bool_value=True)),
        KeyValue(key="ratio", value=AnyValue(double_value=0.25)),
        KeyValue(key="digest", value=AnyValue(bytes_value=b"\x00\xff")),
        KeyValue(key="skus", value=AnyValue(array_value=ArrayValue(values=[
            AnyValue(string_value="mug"), AnyValue(int_value=2)]))),
        KeyValue(key="order", value=AnyValue(kvlist_value=KeyValueList(values=[
            KeyValue(key="id", value=AnyValue(string_value="o-1"))]))),
        KeyValue(key="unset", value=AnyValue()),
        KeyValue(key="http.status_code", value=AnyValue(int_value=200)),  # a repeated key: the last wins
    ]


def test_attributes_from_their_bytes_read_as_decoded_ones_do_the_first_time_and_after() -> None:
    attributes = _attributes()
    expected = attribute_dict(attributes)
    assert expected["http.status_code"] == 200
    assert expected["skus"] == ["mug", 2]
    serialized = [kv.SerializeToString() for kv in attributes]
    first, again = attribute_dict_of_bytes(serialized), attribute_dict_of_bytes(serialized)
    assert first == expected
    assert again == expected
    assert [type(v) for v in again.values()] == [type(v) for v in expected.values()]


def test_a_list_or_map_value_is_never_shared_between_reads() -> None:
    serialized = [kv.SerializeToString() for kv in _attributes()]
    first = attribute_dict_of_bytes(serialized)
    first["skus"].append("changed by a caller")  # type: ignore[union-attr]
    first["order"]["id"] = "changed"  # type: ignore[index]
    again = attribute_dict_of_bytes(serialized)
    assert again["skus"] == ["mug", 2]
    assert again["order"] == {"id": "o-1"}
