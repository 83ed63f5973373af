//! XML output. Element names come from the API model and are written by the
//! callers; this writer only guarantees well-formed, escaped output.

use std::fmt::Write;

/// Builds the body of a `<{Op}Result>` element.
#[derive(Debug, Default)]
pub struct XmlWriter {
    out: String,
}

impl XmlWriter {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn open(&mut self, tag: &str) -> &mut Self {
        let _ = write!(self.out, "<{tag}>");
        self
    }

    pub fn close(&mut self, tag: &str) -> &mut Self {
        let _ = write!(self.out, "</{tag}>");
        self
    }

    /// `<tag>escaped text</tag>`
    pub fn text(&mut self, tag: &str, value: &str) -> &mut Self {
        self.open(tag);
        escape_into(&mut self.out, value);
        self.close(tag)
    }

    pub fn opt_text(&mut self, tag: &str, value: Option<&str>) -> &mut Self {
        if let Some(v) = value {
            self.text(tag, v);
        }
        self
    }

    pub fn bool(&mut self, tag: &str, value: bool) -> &mut Self {
        self.text(tag, if value { "true" } else { "false" })
    }

    pub fn int(&mut self, tag: &str, value: i64) -> &mut Self {
        self.text(tag, &value.to_string())
    }

    /// A structure element whose children `f` writes.
    pub fn element(&mut self, tag: &str, f: impl FnOnce(&mut Self)) -> &mut Self {
        self.open(tag);
        f(self);
        self.close(tag)
    }

    /// A list: `<tag><member>…</member>…</tag>`; the member name comes from the model.
    pub fn list<T>(
        &mut self,
        tag: &str,
        member: &str,
        items: impl IntoIterator<Item = T>,
        mut f: impl FnMut(&mut Self, T),
    ) -> &mut Self {
        self.open(tag);
        for item in items {
            self.open(member);
            f(self, item);
            self.close(member);
        }
        self.close(tag)
    }

    /// A list of strings: `<tag><member>text</member>…</tag>`.
    pub fn string_list<S: AsRef<str>>(
        &mut self,
        tag: &str,
        member: &str,
        items: impl IntoIterator<Item = S>,
    ) -> &mut Self {
        self.open(tag);
        for item in items {
            self.text(member, item.as_ref());
        }
        self.close(tag)
    }

    pub fn finish(self) -> String {
        self.out
    }
}

fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 cannot carry at all are replaced rather than
            // producing a document no SDK can parse.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
}

/// `<{op}Response xmlns=…><{op}Result>…</{op}Result><ResponseMetadata>…`.
/// `result` of `None` omits the Result element (operations without output).
pub fn success_document(
    namespace: &str,
    op: &str,
    result: Option<&str>,
    request_id: &str,
) -> String {
    let mut s = String::with_capacity(256 + result.map_or(0, str::len));
    let _ = write!(s, "<{op}Response xmlns=\"{namespace}\">");
    if let Some(r) = result {
        let _ = write!(s, "<{op}Result>{r}</{op}Result>");
    }
    let _ = write!(
        s,
        "<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></{op}Response>"
    );
    s
}

/// The `ErrorResponse` envelope; `RequestId` is a sibling of `Error`, as SDKs expect.
pub fn error_document(
    namespace: &str,
    sender_fault: bool,
    code: &str,
    message: &str,
    request_id: &str,
) -> String {
    let mut w = XmlWriter::new();
    w.element("Error", |w| {
        w.text("Type", if sender_fault { "Sender" } else { "Receiver" })
            .text("Code", code)
            .text("Message", message);
    })
    .text("RequestId", request_id);
    format!(
        "<ErrorResponse xmlns=\"{namespace}\">{}</ErrorResponse>",
        w.finish()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_text() {
        let mut w = XmlWriter::new();
        w.text("Message", "c<1>&\"'\u{1}");
        assert_eq!(
            w.finish(),
            "<Message>c&lt;1&gt;&amp;&quot;&apos;\u{FFFD}</Message>"
        );
    }

    #[test]
    fn lists_use_the_member_name() {
        let mut w = XmlWriter::new();
        w.string_list("MemberClusters", "ClusterId", ["a", "b"])
            .list("TagList", "Tag", [("k", "v")], |w, (k, v)| {
                w.text("Key", k).text("Value", v);
            })
            .string_list("SecurityGroups", "member", Vec::<String>::new());
        assert_eq!(
            w.finish(),
            "<MemberClusters><ClusterId>a</ClusterId><ClusterId>b</ClusterId></MemberClusters>\
             <TagList><Tag><Key>k</Key><Value>v</Value></Tag></TagList><SecurityGroups></SecurityGroups>"
        );
    }

    #[test]
    fn envelopes() {
        let ok = success_document("urn:x", "DescribeThings", Some("<A>1</A>"), "rid");
        assert_eq!(
            ok,
            "<DescribeThingsResponse xmlns=\"urn:x\"><DescribeThingsResult><A>1</A></DescribeThingsResult>\
             <ResponseMetadata><RequestId>rid</RequestId></ResponseMetadata></DescribeThingsResponse>"
        );
        let none = success_document("urn:x", "DeleteThing", None, "rid");
        assert!(!none.contains("Result"));
        let err = error_document(
            "urn:x",
            true,
            "CacheClusterNotFound",
            "CacheCluster not found: a&b",
            "rid",
        );
        assert_eq!(
            err,
            "<ErrorResponse xmlns=\"urn:x\"><Error><Type>Sender</Type><Code>CacheClusterNotFound</Code>\
             <Message>CacheCluster not found: a&amp;b</Message></Error><RequestId>rid</RequestId></ErrorResponse>"
        );
    }
}
