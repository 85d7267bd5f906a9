/* Key names (QEMU qcodes) and US-layout characters to Linux keycodes, for the control
 * socket's "sendkey" and "type" verbs. Pure lookups: no state, no I/O. The names and
 * their keys follow QEMU's QKeyCode table (keycodemapdb), except that "menu" is the PC
 * context-menu key (KEY_COMPOSE) as people mean it, not the rare KEY_MENU. Characters
 * are typed with display/keymap.h's US layout. */
#include "hv/keys.h"

#include <errno.h>
#include <limits.h>
#include <linux/input-event-codes.h>
#include <rfb/keysym.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "display/keymap.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

struct key_name {
	const char *kn_name;
	unsigned kn_code;
};

static const struct key_name key_names[] = {
    /* modifiers */
    {"shift", KEY_LEFTSHIFT},
    {"shift_r", KEY_RIGHTSHIFT},
    {"ctrl", KEY_LEFTCTRL},
    {"ctrl_r", KEY_RIGHTCTRL},
    {"alt", KEY_LEFTALT},
    {"alt_r", KEY_RIGHTALT},
    {"meta_l", KEY_LEFTMETA},
    {"meta_r", KEY_RIGHTMETA},
    {"menu", KEY_COMPOSE},
    {"compose", KEY_COMPOSE},
    /* main block */
    {"esc", KEY_ESC},
    {"1", KEY_1},
    {"2", KEY_2},
    {"3", KEY_3},
    {"4", KEY_4},
    {"5", KEY_5},
    {"6", KEY_6},
    {"7", KEY_7},
    {"8", KEY_8},
    {"9", KEY_9},
    {"0", KEY_0},
    {"minus", KEY_MINUS},
    {"equal", KEY_EQUAL},
    {"backspace", KEY_BACKSPACE},
    {"tab", KEY_TAB},
    {"q", KEY_Q},
    {"w", KEY_W},
    {"e", KEY_E},
    {"r", KEY_R},
    {"t", KEY_T},
    {"y", KEY_Y},
    {"u", KEY_U},
    {"i", KEY_I},
    {"o", KEY_O},
    {"p", KEY_P},
    {"bracket_left", KEY_LEFTBRACE},
    {"bracket_right", KEY_RIGHTBRACE},
    {"ret", KEY_ENTER},
    {"a", KEY_A},
    {"s", KEY_S},
    {"d", KEY_D},
    {"f", KEY_F},
    {"g", KEY_G},
    {"h", KEY_H},
    {"j", KEY_J},
    {"k", KEY_K},
    {"l", KEY_L},
    {"semicolon", KEY_SEMICOLON},
    {"apostrophe", KEY_APOSTROPHE},
    {"grave_accent", KEY_GRAVE},
    {"backslash", KEY_BACKSLASH},
    {"z", KEY_Z},
    {"x", KEY_X},
    {"c", KEY_C},
    {"v", KEY_V},
    {"b", KEY_B},
    {"n", KEY_N},
    {"m", KEY_M},
    {"comma", KEY_COMMA},
    {"dot", KEY_DOT},
    {"slash", KEY_SLASH},
    {"spc", KEY_SPACE},
    {"caps_lock", KEY_CAPSLOCK},
    {"less", KEY_102ND},
    /* function keys */
    {"f1", KEY_F1},
    {"f2", KEY_F2},
    {"f3", KEY_F3},
    {"f4", KEY_F4},
    {"f5", KEY_F5},
    {"f6", KEY_F6},
    {"f7", KEY_F7},
    {"f8", KEY_F8},
    {"f9", KEY_F9},
    {"f10", KEY_F10},
    {"f11", KEY_F11},
    {"f12", KEY_F12},
    {"f13", KEY_F13},
    {"f14", KEY_F14},
    {"f15", KEY_F15},
    {"f16", KEY_F16},
    {"f17", KEY_F17},
    {"f18", KEY_F18},
    {"f19", KEY_F19},
    {"f20", KEY_F20},
    {"f21", KEY_F21},
    {"f22", KEY_F22},
    {"f23", KEY_F23},
    {"f24", KEY_F24},
    /* navigation and editing */
    {"print", KEY_SYSRQ},
    {"sysrq", KEY_SYSRQ},
    {"scroll_lock", KEY_SCROLLLOCK},
    {"pause", KEY_PAUSE},
    {"insert", KEY_INSERT},
    {"home", KEY_HOME},
    {"pgup", KEY_PAGEUP},
    {"delete", KEY_DELETE},
    {"end", KEY_END},
    {"pgdn", KEY_PAGEDOWN},
    {"up", KEY_UP},
    {"down", KEY_DOWN},
    {"left", KEY_LEFT},
    {"right", KEY_RIGHT},
    /* keypad */
    {"num_lock", KEY_NUMLOCK},
    {"kp_divide", KEY_KPSLASH},
    {"kp_multiply", KEY_KPASTERISK},
    {"asterisk", KEY_KPASTERISK},
    {"kp_subtract", KEY_KPMINUS},
    {"kp_add", KEY_KPPLUS},
    {"kp_enter", KEY_KPENTER},
    {"kp_decimal", KEY_KPDOT},
    {"kp_equals", KEY_KPEQUAL},
    {"kp_comma", KEY_KPCOMMA},
    {"kp_0", KEY_KP0},
    {"kp_1", KEY_KP1},
    {"kp_2", KEY_KP2},
    {"kp_3", KEY_KP3},
    {"kp_4", KEY_KP4},
    {"kp_5", KEY_KP5},
    {"kp_6", KEY_KP6},
    {"kp_7", KEY_KP7},
    {"kp_8", KEY_KP8},
    {"kp_9", KEY_KP9},
    /* international */
    {"ro", KEY_RO},
    {"hiragana", KEY_HIRAGANA},
    {"henkan", KEY_HENKAN},
    {"muhenkan", KEY_MUHENKAN},
    {"katakanahiragana", KEY_KATAKANAHIRAGANA},
    {"yen", KEY_YEN},
    {"lang1", KEY_HANGEUL},
    {"lang2", KEY_HANJA},
    /* system, media and application keys */
    {"power", KEY_POWER},
    {"sleep", KEY_SLEEP},
    {"wake", KEY_WAKEUP},
    {"audiomute", KEY_MUTE},
    {"volumedown", KEY_VOLUMEDOWN},
    {"volumeup", KEY_VOLUMEUP},
    {"audionext", KEY_NEXTSONG},
    {"audioprev", KEY_PREVIOUSSONG},
    {"audiostop", KEY_STOPCD},
    {"audioplay", KEY_PLAYPAUSE},
    {"mediaselect", KEY_MEDIA},
    {"mail", KEY_MAIL},
    {"calculator", KEY_CALC},
    {"computer", KEY_COMPUTER},
    {"ac_home", KEY_HOMEPAGE},
    {"ac_back", KEY_BACK},
    {"ac_forward", KEY_FORWARD},
    {"ac_refresh", KEY_REFRESH},
    {"ac_bookmarks", KEY_BOOKMARKS},
    {"stop", KEY_STOP},
    {"again", KEY_AGAIN},
    {"props", KEY_PROPS},
    {"undo", KEY_UNDO},
    {"front", KEY_FRONT},
    {"copy", KEY_COPY},
    {"open", KEY_OPEN},
    {"paste", KEY_PASTE},
    {"find", KEY_FIND},
    {"cut", KEY_CUT},
    {"help", KEY_HELP},
    {"lf", KEY_LINEFEED},
};

/* The keycode named by the len bytes at name, or -1. */
static int key_lookup(const char *name, size_t len)
{
	if (len == 0)
		return -1;
	for (size_t i = 0; i < ARRAY_SIZE(key_names); i++) {
		const char *kn = key_names[i].kn_name;

		if (strlen(kn) == len && strncasecmp(kn, name, len) == 0)
			return (int)key_names[i].kn_code;
	}
	return -1;
}

int keys_parse_combo(const char *spec, unsigned *codes, size_t max)
{
	size_t n = 0;

	if (!spec)
		return -EINVAL;
	/* Every name is checked before the count, so a bad name wins over a long list. */
	for (const char *p = spec;; p++) {
		size_t len = strcspn(p, "-");
		int code = key_lookup(p, len);

		if (code < 0)
			return -EINVAL;
		if (n < max)
			codes[n] = (unsigned)code;
		n++;
		p += len;
		if (*p == '\0')
			break;
	}
	if (n > max || n > INT_MAX)
		return -E2BIG;
	return (int)n;
}

int keys_for_char(char c, unsigned *codes, size_t max)
{
	unsigned char uc = (unsigned char)c;
	uint32_t keysym = uc == '\n' ? XK_Return : uc == '\t' ? XK_Tab : uc;
	unsigned code;
	bool shift;
	size_t n = 0;

	if ((uc < 0x20 && uc != '\n' && uc != '\t') || uc >= 0x7F)
		return -EINVAL;
	code = keymap_keysym_to_keycode(keysym);
	if (code == 0)
		return -EINVAL;
	shift = keymap_keysym_level(keysym) == KEYMAP_LEVEL_SHIFT;
	if (max < (shift ? 2u : 1u))
		return -E2BIG;
	if (shift)
		codes[n++] = KEY_LEFTSHIFT;
	codes[n++] = code;
	return (int)n;
}
