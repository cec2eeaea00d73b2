//! FIX data dictionaries in the QuickFIX XML format (`FIX44.xml` and friends): the format
//! users already have for their counterparties. Loaded once per session (`data_dictionary`
//! in the configuration) and used to validate inbound messages the way QuickFIX does, with
//! the FIX SessionRejectReason codes, before anything is delivered or published.
//!
//! Components are expanded where they are used, so a message layout is a flat list of
//! fields and repeating groups (which may nest).

mod parse;
mod validate;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

pub use validate::Violation;

/// Why a dictionary could not be loaded.
#[derive(Debug, thiserror::Error)]
// Each variant is documented by its `#[error]` text, which is what users read.
#[allow(missing_docs)]
pub enum DictionaryError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a FIX data dictionary: {reason}")]
    Format { path: PathBuf, reason: String },
}

/// A field's data type, as far as validation tells them apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldType {
    /// INT, LENGTH, SEQNUM, NUMINGROUP, DAYOFMONTH, TAGNUM.
    Int,
    /// PRICE, QTY, FLOAT, AMT, PERCENTAGE, PRICEOFFSET.
    Float,
    /// CHAR: one character.
    Char,
    /// BOOLEAN: `Y` or `N`.
    Boolean,
    /// UTCTIMESTAMP, TZTIMESTAMP.
    UtcTimestamp,
    /// UTCTIMEONLY, TZTIMEONLY.
    UtcTimeOnly,
    /// UTCDATEONLY, UTCDATE, LOCALMKTDATE, DATE.
    Date,
    /// MONTHYEAR: `YYYYMM`, `YYYYMMDD` or `YYYYMMwN`.
    MonthYear,
    /// Space-separated values, each from the enumeration.
    MultipleValue,
    /// Anything else (STRING, CURRENCY, EXCHANGE, DATA, ...): any bytes.
    Text,
}

#[derive(Clone, Debug)]
pub(crate) struct FieldDef {
    pub name: String,
    pub ftype: FieldType,
    /// The enumeration, if the field has one.
    pub values: Option<HashSet<String>>,
}

/// The fields and groups a message (or group entry, or the header) may carry.
#[derive(Clone, Debug, Default)]
pub(crate) struct Layout {
    /// In dictionary order, with whether each is required.
    pub fields: Vec<(u32, bool)>,
    /// Repeating groups by their NumInGroup tag.
    pub groups: HashMap<u32, Group>,
}

impl Layout {
    pub(crate) fn contains(&self, tag: u32) -> bool {
        self.fields.iter().any(|(t, _)| *t == tag)
    }

    pub(crate) fn required(&self) -> impl Iterator<Item = u32> + '_ {
        self.fields.iter().filter(|(_, r)| *r).map(|(t, _)| *t)
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Group {
    /// The first field of every entry.
    pub delimiter: u32,
    pub layout: Layout,
}

/// One FIX version's dictionary.
#[derive(Clone, Debug)]
pub struct Dictionary {
    /// "FIX.4.4", "FIXT.1.1", ...
    pub begin_string: String,
    pub(crate) fields: HashMap<u32, FieldDef>,
    pub(crate) header: Layout,
    pub(crate) trailer: Layout,
    pub(crate) messages: HashMap<String, Layout>,
    /// Also for display.
    path: PathBuf,
}

impl Dictionary {
    /// From XML text (`path` names it in errors).
    pub fn parse(path: &Path, xml: &str) -> Result<Dictionary, DictionaryError> {
        parse::parse(path, xml)
    }

    /// FIXT.1.1: this (transport) dictionary — header, trailer, session messages — with the
    /// application messages and fields of `app` (QuickFIX's TransportDataDictionary and
    /// AppDataDictionary, e.g. FIXT11.xml and FIX50SP2.xml).
    pub fn with_application(mut self, app: Dictionary) -> Dictionary {
        for (tag, def) in app.fields {
            self.fields.entry(tag).or_insert(def);
        }
        for (t, layout) in app.messages {
            self.messages.entry(t).or_insert(layout);
        }
        self
    }

    /// The file it was read from, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the dictionary defines this MsgType.
    pub fn has_msg_type(&self, msg_type: &str) -> bool {
        self.messages.contains_key(msg_type)
    }

    /// The name of a field, for messages.
    pub fn field_name(&self, tag: u32) -> Option<&str> {
        self.fields.get(&tag).map(|f| f.name.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fix::codec::{frame_body, Decoder, DecoderLimits};
    use crate::fix::session::reject_reason as rr;

    const XML: &str = r#"<fix type='FIX' major='4' minor='4'>
 <header>
  <field name='BeginString' required='Y'/><field name='BodyLength' required='Y'/>
  <field name='MsgType' required='Y'/><field name='SenderCompID' required='Y'/>
  <field name='TargetCompID' required='Y'/><field name='MsgSeqNum' required='Y'/>
  <field name='SendingTime' required='Y'/>
 </header>
 <trailer><field name='CheckSum' required='Y'/></trailer>
 <messages>
  <message name='Heartbeat' msgtype='0' msgcat='admin'><field name='TestReqID' required='N'/></message>
  <message name='NewOrderSingle' msgtype='D' msgcat='app'>
   <field name='ClOrdID' required='Y'/><field name='HandlInst' required='N'/>
   <component name='Instrument' required='Y'/>
   <field name='OrderQty' required='N'/>
   <group name='NoTradingSessions' required='N'><field name='TradingSessionID' required='N'/></group>
  </message>
 </messages>
 <components>
  <component name='Instrument'><field name='Symbol' required='Y'/></component>
 </components>
 <fields>
  <field number='8' name='BeginString' type='STRING'/><field number='9' name='BodyLength' type='LENGTH'/>
  <field number='35' name='MsgType' type='STRING'/><field number='49' name='SenderCompID' type='STRING'/>
  <field number='56' name='TargetCompID' type='STRING'/><field number='34' name='MsgSeqNum' type='SEQNUM'/>
  <field number='52' name='SendingTime' type='UTCTIMESTAMP'/><field number='10' name='CheckSum' type='STRING'/>
  <field number='112' name='TestReqID' type='STRING'/><field number='11' name='ClOrdID' type='STRING'/>
  <field number='21' name='HandlInst' type='CHAR'><value enum='1' description='A'/><value enum='2' description='B'/></field>
  <field number='55' name='Symbol' type='STRING'/><field number='38' name='OrderQty' type='QTY'/>
  <field number='386' name='NoTradingSessions' type='NUMINGROUP'/><field number='336' name='TradingSessionID' type='STRING'/>
 </fields>
</fix>"#;

    fn check(body: &str) -> Result<(), (u32, Option<u32>)> {
        let d = Dictionary::parse(Path::new("test.xml"), XML).unwrap();
        let mut raw = Vec::new();
        frame_body("FIX.4.4", body.replace('|', "\x01").as_bytes(), &mut raw);
        let mut dec = Decoder::new(DecoderLimits::default());
        dec.feed(&raw);
        let msg = dec.decode_next().unwrap().unwrap();
        d.validate(&msg).map_err(|v| (v.reason, v.tag))
    }

    const HDR: &str = "49=A|56=B|34=2|52=20260101-00:00:00.000|";

    #[test]
    fn each_violation_gets_its_reject_reason() {
        let d = |rest: &str| check(&format!("35=D|{HDR}{rest}"));
        assert_eq!(d("11=x|55=S|"), Ok(()));
        assert_eq!(d("11=x|55=S|386=2|336=A|336=B|"), Ok(()));
        assert_eq!(d("55=S|"), Err((rr::REQUIRED_TAG_MISSING, Some(11))));
        assert_eq!(d("11=x|"), Err((rr::REQUIRED_TAG_MISSING, Some(55))));
        assert_eq!(
            d("11=x|55=S|9999=1|"),
            Err((rr::INVALID_TAG_NUMBER, Some(9999)))
        );
        assert_eq!(
            d("11=x|55=S|112=t|"),
            Err((rr::TAG_NOT_DEFINED_FOR_MSG_TYPE, Some(112)))
        );
        assert_eq!(d("11=x|55=S|21=7|"), Err((rr::VALUE_INCORRECT, Some(21))));
        assert_eq!(
            d("11=x|55=S|38=1e5|"),
            Err((rr::INCORRECT_DATA_FORMAT, Some(38)))
        );
        assert_eq!(
            d("11=x|55=S|55=T|"),
            Err((rr::TAG_APPEARS_MORE_THAN_ONCE, Some(55)))
        );
        assert_eq!(
            d("11=x|55=S|386=3|336=A|336=B|"),
            Err((rr::INCORRECT_NUM_IN_GROUP_COUNT, Some(386)))
        );
        assert_eq!(
            check("35=D|11=x|55=S|49=A|56=B|34=2|52=20260101-00:00:00.000|"),
            Err((rr::TAG_OUT_OF_ORDER, Some(49)))
        );
        assert_eq!(
            check(&format!("35=ZZ|{HDR}")),
            Err((rr::INVALID_MSG_TYPE, None))
        );
        assert_eq!(check(&format!("35=0|{HDR}112=t|")), Ok(()));
    }

    #[test]
    fn broken_dictionaries_are_refused_with_the_reason() {
        for (xml, says) in [
            ("<nope/>", "not <fix>"),
            ("<fix><messages/></fix>", "no <fields>"),
            (
                "<fix><fields><field number='1' name='A' type='INT'/></fields><messages><message msgtype='X'><field name='B' required='Y'/></message></messages></fix>",
                "\"B\" is not in <fields>",
            ),
            ("<fix", "test.xml"),
        ] {
            let e = Dictionary::parse(Path::new("test.xml"), xml).unwrap_err().to_string();
            assert!(e.contains(says), "{e}");
        }
    }
}
