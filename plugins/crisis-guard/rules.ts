/**
 * The crisis rule table. Each rule names a category of present danger and a pattern over normalised
 * text (lower case, no accents, no apostrophes: "I'm" is "im", "can't" is "cant"). A `strong` rule is
 * enough on its own; `weak` cues (a symptom that is often harmless alone) count half, so two of them
 * together make a detection. Rules are written for kinds of danger, in English and Spanish, not for
 * particular messages.
 */
import type { CrisisCategory } from './types.js';

export interface CrisisRule {
  id: string;
  category: CrisisCategory;
  weight: 'strong' | 'weak';
  pattern: RegExp;
}

const MEDS =
  '(?:pills?|tablets?|meds|medications?|medicines?|insulin|tylenol|acetaminophen|paracetamol|advil|ibuprofen|aspirin|xanax|valium|ativan|klonopin|ambien|oxy\\w*|opioids?|fentanyl|heroin|percocet|vicodin|methadone|sleeping pills|antidepressants?|painkillers?|pain killers|benzos?|lithium|seroquel|bleach|poison|antifreeze|drain cleaner|rat poison|detergent pods?)';
const WHO = '(?:my|his|her|their|the)';
const PERSON = '(?:he|she|they|my \\w+|her|him|baby|kid|child|son|daughter|dad|mom|father|mother|husband|wife|friend|grandma|grandpa)';

const rule = (id: string, category: CrisisCategory, weight: 'strong' | 'weak', source: string): CrisisRule => ({
  id,
  category,
  weight,
  pattern: new RegExp(source),
});

export const CRISIS_RULES: readonly CrisisRule[] = [
  // ---- suicidal ideation --------------------------------------------------------------------------
  rule('suicide.kill-self', 'suicidal_ideation', 'strong', String.raw`\b(?:kill(?:ing)?|end(?:ing)?|off(?:ing)?|shoot(?:ing)?|hang(?:ing)?|drown(?:ing)?) (?:myself|herself|himself|themselves|themself)\b`),
  rule('suicide.end-life', 'suicidal_ideation', 'strong', String.raw`\b(?:end(?:ing)?|take|taking) (?:my|his|her|their) (?:own )?life\b|\bend (?:it|it all|everything)\b|\bend(?:ing)? it all\b`),
  rule('suicide.word', 'suicidal_ideation', 'strong', String.raw`\bsuicid(?:e|al)\b|\bsuicidarme\b|\bsuicid`),
  rule('suicide.want-die', 'suicidal_ideation', 'strong', String.raw`\b(?:want|wanna|wanted|going|gonna|ready|wish i could|need) (?:to )?(?:die|disappear|stop existing|not exist|sleep forever)\b|\bwish (?:i|id) (?:was|were|could be) dead\b|\bwish i (?:was|were)nt (?:here|alive|born)\b|\bwish i (?:would|could)? ?(?:never wake up|not wake up|just disappear)\b|\bbetter off dead\b`),
  rule('suicide.not-live', 'suicidal_ideation', 'strong', String.raw`\b(?:dont|do not|no longer|never|dont even|not) (?:want|wanna|wish) (?:to )?(?:live|be alive|be here|exist|wake up|go on|keep going|be around)\b`),
  rule('suicide.burden', 'suicidal_ideation', 'strong', String.raw`\b(?:better off|happier|easier) without me\b|\b(?:nobody|noone|no body|nobody would|none of them) (?:would|will|even|would even|will even|is going to)? ?(?:notice|care|miss me)\b.{0,30}\b(?:gone|dead|died|disappeared|wasnt here)\b|\bif i (?:was|were) gone\b|\bwhen im gone\b|\bbetter off if i (?:was|were|am|died|wasnt here|wasnt alive)\b`),
  rule('suicide.no-point', 'suicidal_ideation', 'strong', String.raw`\b(?:whats|what is) the point (?:of|in) (?:living|life|being alive|going on|anything anymore|waking up)\b|\bno (?:reason|point) (?:to|in) (?:live|living|go on|going on|be alive|wake up)\b|\bnothing (?:left )?to live for\b|\b(?:dont|cant|do not|cannot|no longer) see (?:a|any|the) (?:reason|point)\b.{0,20}\b(?:liv\w*|go on|going on|keep going|be alive|be here)\b|\bthinking (?:about|of) (?:dying|death|ending it|killing myself|not being here|not waking up)\b`),
  rule('suicide.method', 'suicidal_ideation', 'strong', String.raw`\b(?:jump(?:ing)?|throw(?:ing)? myself) (?:off|from|in front of)\b|\b(?:gun|pills|rope|knife|razor|blade)\b.{0,60}\b(?:on|at) myself\b|\b(?:going to|gonna|about to|want to|wanna|ready to|thinking about) jump\b(?! (?:rope|start|in the pool|into the pool|on))|\bwrite (?:a|my) (?:suicide )?note\b|\bgoodbye (?:letter|note)s?\b|\b(?:have|got|bought|found|took out|holding) (?:the|a|my|some) (?:pills|gun|rope|knife|razor|blade)s? (?:ready|loaded|out|in (?:my|front of me))\b|\b(?:pills|gun|rope|razor)s? (?:is |are )?(?:ready|loaded|in front of me)\b`),
  rule('suicide.not-safe', 'suicidal_ideation', 'strong', String.raw`\bnot safe (?:to be alone|with myself|around myself|by myself|right now|tonight)\b|\b(?:dont|do not) feel safe\b|\bwant (?:it all|everything|the pain|all of this|this all|it) to (?:stop|end|be over)\b`),
  rule('suicide.cant-go-on', 'suicidal_ideation', 'weak', String.raw`\b(?:cant|cannot|can not) (?:do this|go on|take (?:it|this|any ?more)|keep going|handle (?:it|this|life))(?: anymore| any more)?\b|\bim done\b|\bgive up on (?:life|everything)\b|\btired of (?:living|life|being alive|everything)\b`),
  rule('suicide.note', 'suicidal_ideation', 'weak', String.raw`\b(?:wrote|writing|left|leaving) (?:a|my) (?:note|letter)s?\b`),
  rule('suicide.farewell', 'suicidal_ideation', 'weak', String.raw`\b(?:goodbye|bye forever|farewell|this is the end|i love you all|im sorry for everything)\b`),
  rule('suicide.hopeless', 'suicidal_ideation', 'weak', String.raw`\b(?:hopeless|worthless|a burden|no way out|trapped|disappear forever)\b|\bno point(?: anymore| in anything| in trying)?\b|\b(?:have|made|got) a plan\b`),
  rule('suicide.es', 'suicidal_ideation', 'strong', String.raw`\b(?:quiero|quisiera|me quiero|voy a|deseo) (?:morir|morirme|matarme|desaparecer|quitarme la vida)\b|\b(?:ya )?no quiero (?:vivir|seguir viviendo|estar aqui|despertar|seguir)\b|\bquitarme la vida\b|\bmatarme\b|\bganas de (?:morir|morirme|matarme|desaparecer)\b|\bacabar con (?:todo|mi vida)\b|\bmejor (?:estarian|estarias|estaria|estan) sin mi\b|\bno (?:vale|tiene sentido) (?:la pena )?vivir\b|\bno tengo (?:razon|razones|nada) (?:para|por) (?:vivir|que vivir)\b`),
  rule('suicide.es-weak', 'suicidal_ideation', 'weak', String.raw`\bno aguanto mas\b|\bya no puedo mas\b|\bestoy cansad[oa] de vivir\b|\badios a todos\b|\bsin esperanza\b`),

  // ---- self-harm ----------------------------------------------------------------------------------
  rule('self-harm.reflexive', 'self_harm', 'strong', String.raw`\b(?:cut|cutting|cuts|burn|burned|burning|hurt|hurting|harm|harming|hit|hitting|punch|punching|scratch|scratching|starve|starving|stab|stabbing) (?:myself|herself|himself|themselves)\b`),
  rule('self-harm.wrists', 'self_harm', 'strong', String.raw`\b(?:cut|cutting|slit|slitting|slice|slicing)(?: open)? (?:my|his|her) (?:wrists?|veins?|arms?|thighs?)\b`),
  rule('self-harm.again', 'self_harm', 'strong', String.raw`\b(?:been |started |keep |keeps )?cutting again\b|\brelapsed\b.{0,30}\b(?:cut|cutting|self harm|burn)`),
  rule('self-harm.word', 'self_harm', 'strong', String.raw`\bself[ -]?harm(?:ing|ed)?\b|\bself[ -]?injur`),
  rule('self-harm.es', 'self_harm', 'strong', String.raw`\b(?:me corte|me estoy cortando|cortarme|lastimarme|hacerme dano|me hice dano a proposito|me lastime a proposito|me quiero cortar)\b`),

  // ---- overdose and poisoning ---------------------------------------------------------------------
  rule('overdose.word', 'overdose_poisoning', 'strong', String.raw`\b(?:overdos(?:e|ed|ing)|od(?:d|ed)|sobredosis)\b`),
  rule('overdose.took-many', 'overdose_poisoning', 'strong', String.raw`\b(?:took|taken|take|swallowed|ate|drank|had|has taken|just took|accidentally took|got into)\b.{0,20}\b(?:a (?:whole |full )?(?:bunch|handful|bottle|box|lot|pack|week|months?|weeks)|all|too (?:much|many)|double|twice|triple|extra|\d{2,}|several|way too many|lots)\b.{0,30}\b${MEDS}`),
  rule('overdose.swallowed-poison', 'overdose_poisoning', 'strong', String.raw`\b(?:drank|swallowed|ate|drinking|swallowing|got into) (?:some |a |the |a bottle of |a little )?(?:bleach|antifreeze|poison|drain cleaner|rat poison|pesticide|detergent pods?|laundry pods?|button batter(?:y|ies)|magnets|lamp oil|gasoline|windshield fluid|cleaning (?:fluid|liquid|product|solution|spray)|\w+ cleaner|mouthwash|nail polish remover|lighter fluid|essential oils?|my (?:\w+ )?(?:pills|meds|medication))\b`),
  rule('overdose.es', 'overdose_poisoning', 'strong', String.raw`\b(?:se tomo|me tome|tomo|trago|se trago|se comio|me trague|ingirio|se bebio|bebio)\b.{0,25}\b(?:unas|muchas|todas|un monton de|varias|un frasco de|toda la caja de|un puno de|demasiadas?|cloro|veneno|lejia)\b.{0,20}(?:pastillas|pildoras|medicinas|medicamentos|cloro|veneno|lejia|insulina)?`),

  // ---- someone unresponsive, collapsed, not breathing ---------------------------------------------
  rule('unresponsive.wont-wake', 'unresponsive', 'strong', String.raw`\b(?:wont|will not|cant|cannot|can not|isnt|is not|not) (?:wake(?: up| him| her| them)?|waking up|responding|respond|conscious)\b|\bunresponsive\b|\b(?:is|went|gone|goes) (?:limp|floppy)\b|\bunconscious\b|\bno (?:despierta|responde|reacciona)\b|\binconsciente\b`),
  rule('unresponsive.collapsed', 'chest_pain_cardiac', 'strong', String.raw`\b(?:collapsed|passed out|passing out|keeps fainting|fainted|blacked out|knocked out)\b|\b(?:not|isnt|stopped|no longer|cant stop) breathing\b|\bno pulse\b|\bturning (?:blue|purple|gray|grey)\b|\b(?:lips|face|skin) (?:is |are )?(?:turning )?(?:blue|gray|grey)\b|\bse desmayo\b|\bno respira\b|\bdejo de respirar\b`),

  // ---- chest pain and the heart ---------------------------------------------------------------------
  rule('cardiac.chest', 'chest_pain_cardiac', 'strong', String.raw`\bchest (?:pain|pains|pressure|tightness|is (?:tight|hurting|heavy)|feels (?:tight|heavy|like)|hurts|is killing me)\b|\b(?:pain|pressure|tightness|heaviness|squeezing|crushing) (?:in|on|across) (?:my|his|her) chest\b|\bcrushing\b.{0,20}\bchest\b|\b(?:clutching|grabbing|holding) (?:my|his|her|their) chest\b|\b(?:dolor|presion|opresion) (?:de|en el) pecho\b|\bme duele (?:mucho )?el pecho\b`),
  rule('cardiac.attack', 'chest_pain_cardiac', 'strong', String.raw`\b(?:having|is having|think (?:im|i am|he is|she is|hes|shes) having|might be having|could be having) a heart attack\b|\b(?:un )?(?:infarto|ataque al corazon|ataque cardiaco)\b`),
  rule('cardiac.heart-attack-word', 'chest_pain_cardiac', 'weak', String.raw`\bheart attack\b|\bcardiac arrest\b`),
  rule('cardiac.racing', 'chest_pain_cardiac', 'weak', String.raw`\bheart (?:is )?(?:racing|pounding|beating (?:so )?fast|skipping|going crazy)\b|\bheart rate (?:is |of |at )?(?:1[5-9]\d|2\d\d|[2-3]\d)\b|\b(?:1[6-9]\d|2\d\d) ?bpm\b|\blike 1[6-9]\d\b`),
  rule('cardiac.faint', 'chest_pain_cardiac', 'weak', String.raw`\b(?:going to|gonna|about to|might|could) (?:pass out|faint|black out|collapse)\b|\bvery dizzy\b`),
  rule('cardiac.radiating', 'chest_pain_cardiac', 'weak', String.raw`\b(?:jaw|left arm|arm and jaw|back and jaw) (?:hurts|pain|is numb|is tingling|aches)\b|\bpain (?:in|down) (?:my|his|her) (?:left arm|jaw)\b|\bcold sweat\b`),

  // ---- stroke ---------------------------------------------------------------------------------------
  rule('stroke.face', 'stroke_signs', 'strong', String.raw`\b(?:face|mouth|smile|lip|lips) (?:is |are |looks |has |went )?(?:drooping|droopy|drooped|numb|sagging|lopsided|crooked|uneven|twisted)\b|\b(?:droop\w*|numb|weak|cant smile|cant move)\b.{0,20}\bon one side\b|\bdrooping (?:on one side|face|mouth|eye)\b|\b(?:one side of|half (?:of )?)(?:my|his|her|their) face\b|\b(?:cara|boca) (?:caida|torcida|chueca|ladeada)\b`),
  rule('stroke.speech', 'stroke_signs', 'strong', String.raw`\bslurr(?:ed|ing)\b|\b(?:speech|words) (?:is |are )?(?:garbled|coming out wrong|not making sense)\b|\b(?:suddenly )?(?:cant|cannot|can not) (?:speak|talk|get (?:the |her |his |my )?words out|find (?:the |her |his |my )?words)\b|\bhabla (?:raro|arrastrada|arrastrando)\b|\bno puede hablar\b`),
  rule('stroke.weakness', 'stroke_signs', 'strong', String.raw`\b(?:cant|cannot|can not|unable to) (?:lift|move|raise|feel|use) ${WHO} (?:left |right )?(?:arm|leg|hand|side)\b|\b(?:left|right|one) (?:arm|leg|side) (?:is |went |gone )?(?:numb|weak|limp|dead|wont move)\b|\bsudden(?:ly)? (?:numb|weak|paralyzed|confused|cant see|blind|worst headache)\b|\bworst headache of (?:my|his|her) life\b|\bno puede mover (?:el|la) (?:brazo|pierna|lado)\b`),
  rule('stroke.having', 'stroke_signs', 'strong', String.raw`\b(?:having|is having|think (?:im|i am|he is|she is|hes|shes|theyre) having|might be having) a stroke\b|\b(?:derrame|embolia)\b`),
  rule('stroke.word', 'stroke_signs', 'weak', String.raw`\bstroke\b`),
  rule('stroke.confused', 'stroke_signs', 'weak', String.raw`\b(?:confused|disoriented|doesnt know where (?:she|he) is|not making sense|confundid[oa])\b`),

  // ---- breathing and anaphylaxis --------------------------------------------------------------------
  rule('breathing.cant', 'breathing_anaphylaxis', 'strong', String.raw`\b(?:cant|cannot|can not|couldnt|struggling to|trouble|hard to|hard time|difficulty|unable to) ?(?:breathe|breathing|catch (?:my|his|her) breath)\b|\b(?:gasping|choking|suffocating)\b|\bshort(?:ness)? of breath\b|\bno (?:puedo|puede) respirar\b|\b(?:le|me) cuesta respirar\b|\bse esta ahogando\b|\bse ahoga\b|\bahogando\b`),
  rule('breathing.swelling', 'breathing_anaphylaxis', 'strong', String.raw`\bthroat (?:is |feels )?(?:closing|swelling|swollen|tight|closing up)\b|\b(?:lips|tongue|face|throat|mouth|eyes) (?:is |are |keep )?(?:swelling|swollen|puffing up|blowing up)\b|\b(?:swelling|swollen) (?:lips|tongue|throat|face)\b|\banaphyla\w*\b|\bepi ?pen\b|\bse me cierra la garganta\b|\bse (?:le|me) (?:hincha|hinchan|esta hinchando)\b`),
  rule('breathing.allergic', 'breathing_anaphylaxis', 'weak', String.raw`\ballergic reaction\b|\bhives (?:all over|everywhere)\b|\breaccion alergica\b|\bstung\b|\bpicadura\b`),

  // ---- bleeding and trauma --------------------------------------------------------------------------
  rule('trauma.bleeding', 'bleeding_trauma', 'strong', String.raw`\bbleeding (?:a lot|heavily|badly|everywhere|profusely|nonstop|through|so much|really bad)\b|\b(?:wont|will not|doesnt|cant|cannot) stop bleeding\b|\bbleeding (?:that )?(?:wont|will not|doesnt) stop\b|\b(?:its|it is) bleeding (?:a lot|so much|everywhere)\b|\bblood (?:everywhere|wont stop|is gushing|spurting)\b|\b(?:gushing|spurting) blood\b|\b(?:vomiting|throwing up|coughing up) blood\b|\bsangra mucho\b|\bno (?:para|deja) de sangrar\b|\bmucha sangre\b`),
  rule('trauma.injury', 'bleeding_trauma', 'strong', String.raw`\b(?:cant|cannot|can not) (?:feel|move) (?:my|his|her) (?:legs|neck|body|feet)\b|\b(?:been|got|was|just got) (?:shot|stabbed|hit by a car)\b|\bbone (?:is )?sticking out\b|\bhit (?:his|her|my|their) head\b.{0,60}\b(?:passing out|vomit\w*|throwing up|confused|unconscious|wont wake|seizure|bleeding)\b|\bno siento las piernas\b|\b(?:crash|accident|fell|fall|hit by)\b.{0,60}\b(?:cant move|cant feel|unconscious|not moving|wont wake|passed out)\b`),
  rule('trauma.accident', 'bleeding_trauma', 'weak', String.raw`\b(?:car|bike|motorcycle) (?:accident|crash)\b|\bfell (?:off|from|down)\b|\bhit (?:his|her|my|their) head\b|\baccidente\b`),

  // ---- seizure ----------------------------------------------------------------------------------------
  rule('seizure.now', 'seizure_unresponsive', 'strong', String.raw`\b(?:having|is having|has been having|in the middle of|keeps having) (?:a )?seizures?\b|\b(?:seizing|convulsing)\b|\bseizure\b.{0,40}\b(?:minutes|wont stop|not stopping|still going)\b|\b(?:esta )?convulsionando\b|\b(?:tiene|le dio) (?:una )?convulsion\b`),
  rule('seizure.word', 'seizure_unresponsive', 'weak', String.raw`\bseizures?\b|\bconvulsions?\b`),

  // ---- pregnancy ------------------------------------------------------------------------------------
  rule('pregnancy.now', 'pregnancy_emergency', 'weak', String.raw`\bpregnant\b|\bembarazada\b|\b\d{1,2} weeks along\b`),
  rule('pregnancy.danger', 'pregnancy_emergency', 'strong', String.raw`\bbaby (?:is not|isnt|stopped|hasnt been|not) (?:moving|kicking)\b|\bwater broke\b.{0,40}\b(?:weeks|early|bleeding|green)\b`),
  rule('pregnancy.symptom', 'pregnancy_emergency', 'weak', String.raw`\b(?:terrible|severe|worst|pounding|bad) headache\b|\bblurr(?:y|ed) vision\b|\bseeing (?:spots|stars)\b|\bheavy bleeding\b|\bbleeding\b|\bsevere (?:cramps|cramping|pain)\b|\bsangrado\b`),

  // ---- other emergencies ----------------------------------------------------------------------------
  rule('other.alarm', 'other_emergency', 'strong', String.raw`\b(?:co|carbon monoxide|smoke|gas|fire) (?:alarm|detector)s? (?:is |are |keeps? |just )?(?:going off|beeping|went off|sounding)\b|\bsmells? (?:like )?(?:gas|smoke)\b|\b(?:gas|smoke|burning) smell\b|\b(?:house|apartment|kitchen|building) (?:is )?on fire\b|\bcarbon monoxide\b.{0,40}\b(?:headache|dizzy|sick|vomit|nause)`),
  rule('other.meningitis', 'other_emergency', 'strong', String.raw`\brash (?:that )?(?:doesnt|does not|wont|will not) fade\b|\bpurple (?:rash|spots)\b|\bfever (?:of |is |at )?10[5-9]\b`),
  rule('other.fever', 'other_emergency', 'weak', String.raw`\bfever (?:of |is |at )?10[3-4]\b|\bstiff neck\b|\btemp(?:erature)? (?:of |is )?10[4-9]\b`),
  rule('other.abdomen', 'other_emergency', 'weak', String.raw`\bsevere (?:pain|abdominal pain|belly pain|stomach pain)\b|\bworst pain\b|\blower right (?:belly|abdomen|side|stomach)\b|\b(?:cant|cannot) stand up straight\b|\bthrowing up\b.{0,40}\b(?:cant|wont) stop\b`),
  rule('other.hypoglycemia', 'other_emergency', 'weak', String.raw`\b(?:shaking|shaky|sweaty|sweating|trembling)\b.{0,30}\b(?:confused|dizzy|sweaty|shaking)\b|\bblood sugar (?:is |of |at )?(?:[1-4]\d)\b`),

  // ---- violence -------------------------------------------------------------------------------------
  rule('violence.intent', 'violence_danger', 'strong', String.raw`\b(?:going to|gonna|will|want to|wanna|might|could|about to|feel like|afraid ill|scared ill|afraid i will|scared i will|afraid im going to|scared im going to) (?:hurt|hurting|kill|killing|stab|stabbing|shoot|shooting|attack|attacking|strangle|beat up|murder) (?:someone|somebody|people|everyone|him|her|them|my \w+|the \w+)\b|\b(?:hurt|kill) (?:someone|somebody)\b`),
  rule('violence.victim', 'violence_danger', 'strong', String.raw`\b${PERSON} (?:is|keeps|has been|just|started)? ?(?:hitting|beating|choking|strangling|threatening|hurting|attacking) me\b|\b(?:threatened|threatening|threatens|says he will|said he would|said she would|says shell|says hell) (?:to )?(?:kill|hurt|shoot|stab) (?:me|us|my \w+|the kids|everyone)\b|\b(?:someone|somebody|a man|a guy|he|she) (?:is )?(?:breaking in(?:to)?|trying to (?:get in|break in(?:to)?|kill (?:me|us)|hurt (?:me|us)))\b|\b(?:has|have|got|with) a (?:gun|knife|weapon)\b.{0,40}\b(?:me|us|threaten|here)\b|\bim being (?:attacked|abused|followed|hurt)\b|\bme (?:esta|quiere) (?:pegando|golpeando|matar|lastimar)\b|\bme (?:pega|golpea|amenaza)\b|\bme va a matar\b|\bvoy a matar a\b`),
];
