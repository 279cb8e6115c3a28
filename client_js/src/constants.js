// Every name the snippet shares with pages, servers and tags lives here.

/** Cookie holding the remembered decision (see storage.js for the format). */
export const DECISION_COOKIE = 'consent';
/** Cookie holding the first-party anonymous subject id. */
export const ID_COOKIE = 'consent_sid';
/** Lifetime of both cookies, in seconds (180 days, then the banner asks again). */
export const MAX_AGE = 180 * 86400;
/** Subject ids the server accepts on the public endpoint. */
export const ID_RE = /^anon-[\w.:@+-]{1,123}$/;

/** Purpose kinds a visitor decides on in the banner (others are asked in the app). */
export const CHOOSABLE_KINDS = ['cookie', 'marketing', 'third_party', 'processing'];
/** Statuses of an account's purpose that count as decided (others ask again). */
export const DECIDED = ['granted', 'denied', 'withdrawn'];
/** Google Consent Mode v2 signals, in the order gtag documents them. */
export const SIGNALS = ['ad_storage', 'analytics_storage', 'ad_user_data', 'ad_personalization'];

/** Global the server may set before the bundle to inline the tenant's config. */
export const INLINE_CONFIG = '__CONSENT_CONFIG__';
/** Locales the snippet ships; the first is the fallback. */
export const LOCALES = ['en', 'zh-CN'];

export const ACTION_ATTR = 'data-consent-action';
export const OPEN_ATTR = 'data-consent-open';
export const BLOCKED_SCRIPTS = 'script[type="text/plain"][data-consent]';
/** Id of the element holding banner and panel; every CSS rule is scoped under it. */
export const ROOT_ID = 'consent-sdk';

/** Global through which a lazily loaded part (consent-NAME.js) hands itself to the bundle. */
export const PART_HOOK = '__consentPart';
/** DOM event (on document, bubbling to window) after every change: detail {allowed, subject_id}. */
export const CHANGE_EVENT = 'consentchange';
/** iOS: WKScriptMessageHandler name, called as window.webkit.messageHandlers.consent.postMessage(detail). */
export const IOS_HANDLER = 'consent';
/** Android: addJavascriptInterface name, called as window.ConsentAndroid.postMessage(JSON text). */
export const ANDROID_BRIDGE = 'ConsentAndroid';

/** Wait before each retry of a failed POST, in ms. */
export const RETRY_DELAYS = [1000, 4000, 15000, 60000];
