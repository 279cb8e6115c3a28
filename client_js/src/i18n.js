// Interface texts of the snippet: the banner's, in every page's bundle, and the panel's,
// in its lazily loaded part. Purpose and vendor texts come from the server, already in the
// visitor's locale.

import { LOCALES } from './constants.js';

export const TEXTS = {
  en: {
    title: 'Your privacy choices',
    intro: 'We use cookies for the purposes below. Essential ones keep the site working; the others need your consent, which you can change or withdraw at any time.',
    policy: 'Privacy policy',
    'accept-all': 'Accept all',
    'reject-all': 'Reject all',
    preferences: 'Preferences',
    updated: 'Our privacy policy has changed. Please review your choices.',
    gpc: 'Your browser sends Global Privacy Control: marketing and third-party sharing start off.',
  },
  'zh-CN': {
    title: '您的隐私选择',
    intro: '我们使用 Cookie 实现以下目的。必要的 Cookie 保障网站正常运行，其他用途需征得您的同意，您可随时更改或撤回。',
    policy: '隐私政策',
    'accept-all': '全部接受',
    'reject-all': '全部拒绝',
    preferences: '偏好设置',
    updated: '隐私政策已更新，请重新确认您的选择。',
    gpc: '您的浏览器开启了全球隐私控制（GPC），营销推广和第三方共享默认关闭。',
  },
};

/** Texts only the preferences panel shows; they travel in its part (consent-panel.js). */
export const PANEL_TEXTS = {
  en: {
    save: 'Save',
    close: 'Close',
    panelIntro: 'Choose what you allow. Withdrawing consent does not affect processing done before it.',
    alwaysOn: 'Always on',
    vendors: 'Third parties',
    company: 'Company',
    data: 'Data collected',
    purpose: 'Purpose',
    scenario: 'When',
    sep: ', ',
  },
  'zh-CN': {
    save: '保存',
    close: '关闭',
    panelIntro: '请选择您允许的用途。撤回同意不影响撤回前基于同意已进行的处理。',
    alwaysOn: '始终开启',
    vendors: '第三方服务',
    company: '合作方主体',
    data: '涉及个人信息',
    purpose: '使用目的',
    scenario: '使用场景',
    sep: '、',
  },
};

/**
 * The shipped locale for the first usable candidate (data-locale, then <html lang>,
 * then navigator.languages): `zh*` gives zh-CN, `en*` gives en; otherwise en.
 */
export function pickLocale(candidates) {
  for (const c of candidates) {
    const l = String(c || '').toLowerCase();
    if (l.startsWith('zh')) return 'zh-CN';
    if (l.startsWith('en')) return 'en';
  }
  return LOCALES[0];
}

/** Texts for a shipped locale (English for anything else). */
export const texts = (locale) => TEXTS[locale] || TEXTS.en;
