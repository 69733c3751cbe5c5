-- presence.lua (after helpers.lua): the display names of the live members of a room.
-- KEYS: presence.
return live(KEYS[1])
