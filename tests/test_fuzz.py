"""Malformed domain XML and custom-property values, generated with
hypothesis: always a vdsm error (or a valid spec), never anything else.

The seed is Engine's own XML (test_domxml.engine_xml: LibvirtVmXmlBuilder);
the mutations are what Engine never writes, hence hand-made."""

from hypothesis import HealthCheck, given, settings, strategies as st

from vdsm_container.spec import domxml
from vdsm_container import errors
from vdsm_container.spec import properties

from .test_domxml import engine_xml

ENGINE_XML = engine_xml()

FUZZ = settings(max_examples=300, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])


def parse_or_vdsm_error(xml):
    try:
        domxml.parse(xml)
    except errors.VdsmException as e:
        assert e.code in (11, 17, 91), e
        assert str(e)


@FUZZ
@given(st.text(max_size=300))
def test_any_text(text):
    parse_or_vdsm_error(text)


@FUZZ
@given(st.integers(min_value=0, max_value=len(ENGINE_XML)),
       st.integers(min_value=0, max_value=40), st.text(max_size=20))
def test_engine_xml_with_a_slice_replaced(at, length, junk):
    parse_or_vdsm_error(ENGINE_XML[:at] + junk + ENGINE_XML[at + length:])


PROPS = ["containerType", "containerImage", "containerCommand",
         "containerEnv", "containerVolumes", "containerNetwork"]


@FUZZ
@given(st.sampled_from(PROPS), st.text(max_size=80))
def test_custom_property_values(name, value):
    start = "<ovirt-vm:%s>" % name
    end = "</ovirt-vm:%s>" % name
    head, _, rest = ENGINE_XML.partition(start)
    _, _, tail = rest.partition(end)
    escaped = (value.replace("&", "&amp;").replace("<", "&lt;")
               .replace(">", "&gt;"))
    parse_or_vdsm_error(head + start + escaped + end + tail)


@FUZZ
@given(st.text(max_size=60), st.integers(min_value=0, max_value=4))
def test_network_values(value, nics):
    try:
        configs = properties.network(value, nics)
    except errors.VdsmException as e:
        assert e.code == 91
    else:
        assert all(c.mode in ("dhcp", "static", "none") for c in configs)
