//! Reading the QuickFIX XML: `<fields>` (number, name, type, enumerated values),
//! `<components>`, `<header>`, `<trailer>` and `<messages>`; components expanded in place.
//! The text comes in; reading the file is the caller's (`fixcurve::fix::dictionary::load`).

use std::collections::{HashMap, HashSet};
use std::path::Path;

use roxmltree::{Document, Node};

use super::{Dictionary, DictionaryError, FieldDef, FieldType, Group, Layout};

/// Components nest a few levels; a cycle must not recurse for ever.
const MAX_DEPTH: usize = 32;

fn format_err(path: &Path, reason: String) -> DictionaryError {
    DictionaryError::Format {
        path: path.to_path_buf(),
        reason,
    }
}

fn field_type(t: &str) -> FieldType {
    match t {
        "INT" | "LENGTH" | "SEQNUM" | "NUMINGROUP" | "DAYOFMONTH" | "TAGNUM" => FieldType::Int,
        "PRICE" | "QTY" | "FLOAT" | "AMT" | "PERCENTAGE" | "PRICEOFFSET" => FieldType::Float,
        "CHAR" => FieldType::Char,
        "BOOLEAN" => FieldType::Boolean,
        "UTCTIMESTAMP" | "TZTIMESTAMP" => FieldType::UtcTimestamp,
        "UTCTIMEONLY" | "TZTIMEONLY" => FieldType::UtcTimeOnly,
        "UTCDATEONLY" | "UTCDATE" | "LOCALMKTDATE" | "DATE" => FieldType::Date,
        "MONTHYEAR" => FieldType::MonthYear,
        "MULTIPLEVALUESTRING" | "MULTIPLESTRINGVALUE" | "MULTIPLECHARVALUE" => {
            FieldType::MultipleValue
        }
        _ => FieldType::Text,
    }
}

struct Ctx<'a, 'i> {
    path: &'a Path,
    names: HashMap<&'a str, u32>,
    components: HashMap<&'a str, Node<'a, 'i>>,
}

pub(super) fn parse(path: &Path, xml: &str) -> Result<Dictionary, DictionaryError> {
    let doc = Document::parse(xml).map_err(|e| format_err(path, e.to_string()))?;
    let root = doc.root_element();
    if root.tag_name().name() != "fix" {
        return Err(format_err(path, "the root element is not <fix>".into()));
    }
    let kind = root.attribute("type").unwrap_or("FIX");
    let major = root.attribute("major").unwrap_or("4");
    let minor = root.attribute("minor").unwrap_or("4");
    let begin_string = format!("{kind}.{major}.{minor}");
    let section = |name: &str| root.children().find(|n| n.has_tag_name(name));

    let mut fields = HashMap::new();
    let mut names = HashMap::new();
    if let Some(fs) = section("fields") {
        for f in fs.children().filter(|n| n.has_tag_name("field")) {
            let (Some(num), Some(name)) = (f.attribute("number"), f.attribute("name")) else {
                return Err(format_err(path, "a <field> without number or name".into()));
            };
            let tag: u32 = num
                .parse()
                .map_err(|_| format_err(path, format!("field {name}: number {num:?}")))?;
            let values: HashSet<String> = f
                .children()
                .filter(|n| n.has_tag_name("value"))
                .filter_map(|v| v.attribute("enum").map(str::to_owned))
                .collect();
            names.insert(name, tag);
            fields.insert(
                tag,
                FieldDef {
                    name: name.to_owned(),
                    ftype: field_type(f.attribute("type").unwrap_or("STRING")),
                    values: (!values.is_empty()).then_some(values),
                },
            );
        }
    }
    let components = section("components")
        .map(|c| {
            c.children()
                .filter(|n| n.has_tag_name("component"))
                .filter_map(|n| n.attribute("name").map(|name| (name, n)))
                .collect()
        })
        .unwrap_or_default();
    let ctx = Ctx {
        path,
        names,
        components,
    };
    let header = match section("header") {
        Some(h) => layout(&ctx, h, 0)?,
        None => Layout::default(),
    };
    let trailer = match section("trailer") {
        Some(t) => layout(&ctx, t, 0)?,
        None => Layout::default(),
    };
    let mut messages = HashMap::new();
    if let Some(ms) = section("messages") {
        for m in ms.children().filter(|n| n.has_tag_name("message")) {
            let Some(t) = m.attribute("msgtype") else {
                return Err(format_err(path, "a <message> without msgtype".into()));
            };
            messages.insert(t.to_owned(), layout(&ctx, m, 0)?);
        }
    }
    if fields.is_empty() || messages.is_empty() {
        return Err(format_err(path, "no <fields> or no <messages>".into()));
    }
    Ok(Dictionary {
        begin_string,
        fields,
        header,
        trailer,
        messages,
        path: path.to_path_buf(),
    })
}

fn tag_of(ctx: &Ctx<'_, '_>, n: Node<'_, '_>) -> Result<u32, DictionaryError> {
    let name = n.attribute("name").unwrap_or_default();
    ctx.names
        .get(name)
        .copied()
        .ok_or_else(|| format_err(ctx.path, format!("{name:?} is not in <fields>")))
}

/// The fields and groups under `node`, components expanded.
fn layout(ctx: &Ctx<'_, '_>, node: Node<'_, '_>, depth: usize) -> Result<Layout, DictionaryError> {
    let mut out = Layout::default();
    add_children(ctx, node, depth, true, &mut out)?;
    Ok(out)
}

fn add_children(
    ctx: &Ctx<'_, '_>,
    node: Node<'_, '_>,
    depth: usize,
    parent_required: bool,
    out: &mut Layout,
) -> Result<(), DictionaryError> {
    if depth > MAX_DEPTH {
        return Err(format_err(
            ctx.path,
            "components nest too deep (a cycle?)".into(),
        ));
    }
    for n in node.children().filter(|n| n.is_element()) {
        let required = parent_required && n.attribute("required") == Some("Y");
        match n.tag_name().name() {
            "field" => out.fields.push((tag_of(ctx, n)?, required)),
            "group" => {
                let count = tag_of(ctx, n)?;
                let inner = layout(ctx, n, depth.saturating_add(1))?;
                let delimiter = inner.fields.first().map(|(t, _)| *t).ok_or_else(|| {
                    format_err(
                        ctx.path,
                        format!("group {:?} is empty", n.attribute("name")),
                    )
                })?;
                out.fields.push((count, required));
                out.groups.insert(
                    count,
                    Group {
                        delimiter,
                        layout: inner,
                    },
                );
            }
            "component" => {
                let name = n.attribute("name").unwrap_or_default();
                let c = ctx.components.get(name).ok_or_else(|| {
                    format_err(ctx.path, format!("component {name:?} is not defined"))
                })?;
                add_children(ctx, *c, depth.saturating_add(1), required, out)?;
            }
            _ => {}
        }
    }
    Ok(())
}
