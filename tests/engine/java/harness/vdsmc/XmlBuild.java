package vdsmc;

import java.util.Map;

final class XmlBuild {
    Object build(Map<String, Object> vm) {
        throw new UnsupportedOperationException("not yet");
    }
}
