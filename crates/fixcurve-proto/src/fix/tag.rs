//! FIX tag numbers used by name anywhere in fixcurve: one table, so a number is written once.

/// Account (1).
pub const ACCOUNT: u32 = 1;
/// AvgPx (6).
pub const AVG_PX: u32 = 6;
/// BeginSeqNo (7).
pub const BEGIN_SEQ_NO: u32 = 7;
/// BeginString (8).
pub const BEGIN_STRING: u32 = 8;
/// BodyLength (9).
pub const BODY_LENGTH: u32 = 9;
/// CheckSum (10).
pub const CHECK_SUM: u32 = 10;
/// ClOrdId (11).
pub const CL_ORD_ID: u32 = 11;
/// CumQty (14).
pub const CUM_QTY: u32 = 14;
/// Currency (15).
pub const CURRENCY: u32 = 15;
/// EndSeqNo (16).
pub const END_SEQ_NO: u32 = 16;
/// ExecId (17).
pub const EXEC_ID: u32 = 17;
/// LastPx (31).
pub const LAST_PX: u32 = 31;
/// LastQty (32).
pub const LAST_QTY: u32 = 32;
/// MsgSeqNum (34).
pub const MSG_SEQ_NUM: u32 = 34;
/// MsgType (35).
pub const MSG_TYPE: u32 = 35;
/// NewSeqNo (36).
pub const NEW_SEQ_NO: u32 = 36;
/// OrderId (37).
pub const ORDER_ID: u32 = 37;
/// OrderQty (38).
pub const ORDER_QTY: u32 = 38;
/// OrdStatus (39).
pub const ORD_STATUS: u32 = 39;
/// OrigClOrdId (41).
pub const ORIG_CL_ORD_ID: u32 = 41;
/// PossDupFlag (43).
pub const POSS_DUP_FLAG: u32 = 43;
/// Price (44).
pub const PRICE: u32 = 44;
/// RefSeqNum (45).
pub const REF_SEQ_NUM: u32 = 45;
/// SenderCompId (49).
pub const SENDER_COMP_ID: u32 = 49;
/// SendingTime (52).
pub const SENDING_TIME: u32 = 52;
/// Side (54).
pub const SIDE: u32 = 54;
/// Symbol (55).
pub const SYMBOL: u32 = 55;
/// TargetCompId (56).
pub const TARGET_COMP_ID: u32 = 56;
/// Text (58).
pub const TEXT: u32 = 58;
/// TransactTime (60).
pub const TRANSACT_TIME: u32 = 60;
/// ValidUntilTime (62).
pub const VALID_UNTIL_TIME: u32 = 62;
/// PossResend (97).
pub const POSS_RESEND: u32 = 97;
/// EncryptMethod (98).
pub const ENCRYPT_METHOD: u32 = 98;
/// HeartBtInt (108).
pub const HEART_BT_INT: u32 = 108;
/// TestReqId (112).
pub const TEST_REQ_ID: u32 = 112;
/// QuoteId (117).
pub const QUOTE_ID: u32 = 117;
/// OrigSendingTime (122).
pub const ORIG_SENDING_TIME: u32 = 122;
/// GapFillFlag (123).
pub const GAP_FILL_FLAG: u32 = 123;
/// BidPx (132).
pub const BID_PX: u32 = 132;
/// OfferPx (133).
pub const OFFER_PX: u32 = 133;
/// BidSize (134).
pub const BID_SIZE: u32 = 134;
/// OfferSize (135).
pub const OFFER_SIZE: u32 = 135;
/// ResetSeqNumFlag (141).
pub const RESET_SEQ_NUM_FLAG: u32 = 141;
/// ExecType (150).
pub const EXEC_TYPE: u32 = 150;
/// LeavesQty (151).
pub const LEAVES_QTY: u32 = 151;
/// MdReqId (262).
pub const MD_REQ_ID: u32 = 262;
/// NoMdEntries (268).
pub const NO_MD_ENTRIES: u32 = 268;
/// MdEntryType (269).
pub const MD_ENTRY_TYPE: u32 = 269;
/// MdEntryPx (270).
pub const MD_ENTRY_PX: u32 = 270;
/// MdEntrySize (271).
pub const MD_ENTRY_SIZE: u32 = 271;
/// MdEntryDate (272).
pub const MD_ENTRY_DATE: u32 = 272;
/// MdEntryTime (273).
pub const MD_ENTRY_TIME: u32 = 273;
/// MdEntryId (278).
pub const MD_ENTRY_ID: u32 = 278;
/// MdUpdateAction (279).
pub const MD_UPDATE_ACTION: u32 = 279;
/// MdReqRejReason (281).
pub const MD_REQ_REJ_REASON: u32 = 281;
/// MdEntryPositionNo (290).
pub const MD_ENTRY_POSITION_NO: u32 = 290;
/// SecurityTradingStatus (326).
pub const SECURITY_TRADING_STATUS: u32 = 326;
/// HaltReason (327).
pub const HALT_REASON: u32 = 327;
/// HighPx (332).
pub const HIGH_PX: u32 = 332;
/// LowPx (333).
pub const LOW_PX: u32 = 333;
/// TradingSessionId (336).
pub const TRADING_SESSION_ID: u32 = 336;
/// TradSesStatus (340).
pub const TRAD_SES_STATUS: u32 = 340;
/// NumberOfOrders (346).
pub const NUMBER_OF_ORDERS: u32 = 346;
/// RefTagId (371).
pub const REF_TAG_ID: u32 = 371;
/// RefMsgType (372).
pub const REF_MSG_TYPE: u32 = 372;
/// SessionRejectReason (373).
pub const SESSION_REJECT_REASON: u32 = 373;
/// BusinessRejectReason (380).
pub const BUSINESS_REJECT_REASON: u32 = 380;
/// Username (553).
pub const USERNAME: u32 = 553;
/// Password (554).
pub const PASSWORD: u32 = 554;
/// NewPassword (925).
pub const NEW_PASSWORD: u32 = 925;
/// DefaultApplVerId (1137).
pub const DEFAULT_APPL_VER_ID: u32 = 1137;
